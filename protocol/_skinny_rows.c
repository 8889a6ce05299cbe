/* The scalar row loop of protocol/skinny.py, compiled; and a bit-sliced batch encryption.
 *
 * This file holds no cipher constant and no key schedule: the eight 65,536-entry row tables
 * (SubCells + ShiftRows per 16-bit row, and their inverses), the round keys and the row-2
 * constant all come from protocol/skinny.py, which builds them from the paper (Beierle et al.,
 * CRYPTO 2016, section 2). What is here is the same eight lines per round as
 * skinny.encrypt_block / skinny.decrypt_block, so a block costs a few hundred nanoseconds
 * instead of 6-7 microseconds of interpreted Python. tests/protocol/test_skinny.py runs the
 * published vectors and 10^5 random blocks through both and requires identical output.
 *
 * No I/O, no global state beyond the type object: one RowCipher object per process holds
 * copies of the tables, and each table split in two 256-entry halves (by input byte) that
 * calls of a few blocks use: a status request's one EBID then stays in the L1 cache.
 *
 * encrypt_runs() is the same cipher bit-sliced (SKINNY paper, section 2; as protocol/skinny.py's
 * numpy path): 256 blocks at a time, the state held as 64 bit-planes of 256 bits (plane b holds
 * bit b of every block, bit 0 being the most significant), so SubCells is twelve boolean
 * operations per cell for all 256 blocks, ShiftRows is the choice of which planes MixColumns
 * reads, and there is no table and no data-dependent memory access. Each block may have its own
 * key: a round key bit becomes a mask of the lanes whose key has that bit set. This is what
 * minting tuple bundles needs (hundreds of EBIDs under four or five day keys, for many phones
 * at once); the round keys still come from protocol/skinny.py (KeySchedule.rows, each bit of
 * each round key as one byte: _sliced_round_keys, expanded once per key).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_ENTRIES 65536
#define BLOCK_SIZE 8

typedef struct {
    PyObject_HEAD
    uint16_t forward[4][TABLE_ENTRIES]; /* T0..T3 of skinny.py */
    uint16_t inverse[4][TABLE_ENTRIES]; /* I0..I3 of skinny.py */
    uint16_t c2;                        /* the row-2 constant after ShiftRows */
    /* Each row table split by input byte: table[y] == high[y >> 8] | low[y & 0xFF] (SubCells
     * works cell by cell and ShiftRows moves whole cells, so every output cell comes from one
     * input byte). 8 KiB for the eight tables instead of 1 MiB: a lone block (a request's
     * EBID) then runs from the L1 cache instead of missing it at most lookups. Checked on all
     * 65,536 entries at init; split_ok is 0 (the big tables serve) if any table is not so. */
    uint16_t forward_high[4][256], forward_low[4][256];
    uint16_t inverse_high[4][256], inverse_low[4][256];
    int split_ok;
} RowCipher;

/* Tables of few blocks use the split tables, larger batches the big ones (warm in cache). */
#define SPLIT_MAX_BLOCKS 16

static uint64_t load_be64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | p[i];
    return x;
}

static void store_be64(unsigned char *p, uint64_t x) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(x & 0xFF);
        x >>= 8;
    }
}

/* skinny.encrypt_block's loop: keys are (k0, k1) pairs of native uint16, one pair per round. */
static uint64_t encrypt_one(const RowCipher *c, const uint16_t *keys, Py_ssize_t rounds,
                            uint64_t x) {
    uint32_t r0 = (uint32_t)(x >> 48), r1 = (uint32_t)(x >> 32) & 0xFFFF;
    uint32_t r2 = (uint32_t)(x >> 16) & 0xFFFF, r3 = (uint32_t)x & 0xFFFF;
    for (Py_ssize_t i = 0; i < rounds; i++) {
        uint32_t a = c->forward[0][r0] ^ keys[2 * i];
        uint32_t b = c->forward[1][r1] ^ keys[2 * i + 1];
        uint32_t d = c->forward[2][r2] ^ c->c2;
        /* MixColumns: rows become (r0^r2^r3, r0, r1^r2, r0^r2). */
        r1 = a;
        r2 = b ^ d;
        a ^= d;
        r0 = a ^ c->forward[3][r3];
        r3 = a;
    }
    return ((uint64_t)r0 << 48) | ((uint64_t)r1 << 32) | ((uint64_t)r2 << 16) | r3;
}

/* encrypt_one on the split tables. */
static uint64_t encrypt_one_split(const RowCipher *c, const uint16_t *keys, Py_ssize_t rounds,
                                  uint64_t x) {
    const uint16_t(*H)[256] = c->forward_high, (*L)[256] = c->forward_low;
    uint32_t r0 = (uint32_t)(x >> 48), r1 = (uint32_t)(x >> 32) & 0xFFFF;
    uint32_t r2 = (uint32_t)(x >> 16) & 0xFFFF, r3 = (uint32_t)x & 0xFFFF;
    for (Py_ssize_t i = 0; i < rounds; i++) {
        uint32_t a = (H[0][r0 >> 8] | L[0][r0 & 0xFF]) ^ keys[2 * i];
        uint32_t b = (H[1][r1 >> 8] | L[1][r1 & 0xFF]) ^ keys[2 * i + 1];
        uint32_t d = (H[2][r2 >> 8] | L[2][r2 & 0xFF]) ^ c->c2;
        r1 = a;
        r2 = b ^ d;
        a ^= d;
        r0 = a ^ (H[3][r3 >> 8] | L[3][r3 & 0xFF]);
        r3 = a;
    }
    return ((uint64_t)r0 << 48) | ((uint64_t)r1 << 32) | ((uint64_t)r2 << 16) | r3;
}

/* decrypt_one on the split tables. */
static uint64_t decrypt_one_split(const RowCipher *c, const uint16_t *keys, Py_ssize_t rounds,
                                  uint64_t y) {
    const uint16_t(*H)[256] = c->inverse_high, (*L)[256] = c->inverse_low;
    uint32_t y0 = (uint32_t)(y >> 48), y1 = (uint32_t)(y >> 32) & 0xFFFF;
    uint32_t y2 = (uint32_t)(y >> 16) & 0xFFFF, y3 = (uint32_t)y & 0xFFFF;
    for (Py_ssize_t i = rounds - 1; i >= 0; i--) {
        uint32_t x2 = y1 ^ y3;
        uint32_t v0 = y1 ^ keys[2 * i], v1 = x2 ^ y2 ^ keys[2 * i + 1];
        uint32_t v2 = x2 ^ c->c2, v3 = y0 ^ y3;
        y0 = H[0][v0 >> 8] | L[0][v0 & 0xFF];
        y1 = H[1][v1 >> 8] | L[1][v1 & 0xFF];
        y2 = H[2][v2 >> 8] | L[2][v2 & 0xFF];
        y3 = H[3][v3 >> 8] | L[3][v3 & 0xFF];
    }
    return ((uint64_t)y0 << 48) | ((uint64_t)y1 << 32) | ((uint64_t)y2 << 16) | y3;
}

/* Split one 65,536-entry table by input byte (see RowCipher); 0 if it does not split. */
static int split_table(const uint16_t *table, uint16_t *high, uint16_t *low) {
    /* The output cells that change with the high byte while the low byte stays 0. */
    uint16_t high_mask = 0;
    for (uint32_t b = 1; b < 256; b++) high_mask |= table[b << 8] ^ table[0];
    for (int cell = 0; cell < 4; cell++) /* whole cells */
        if (high_mask & (0xF << (4 * cell))) high_mask |= (uint16_t)(0xF << (4 * cell));
    for (uint32_t b = 0; b < 256; b++) {
        high[b] = table[b << 8] & high_mask;
        low[b] = table[b] & (uint16_t)~high_mask;
    }
    for (uint32_t y = 0; y < TABLE_ENTRIES; y++)
        if ((uint16_t)(high[y >> 8] | low[y & 0xFF]) != table[y]) return 0;
    return 1;
}

/* skinny.decrypt_block's loop: the rounds of encrypt_one undone, last round first. */
static uint64_t decrypt_one(const RowCipher *c, const uint16_t *keys, Py_ssize_t rounds,
                            uint64_t y) {
    uint32_t y0 = (uint32_t)(y >> 48), y1 = (uint32_t)(y >> 32) & 0xFFFF;
    uint32_t y2 = (uint32_t)(y >> 16) & 0xFFFF, y3 = (uint32_t)y & 0xFFFF;
    for (Py_ssize_t i = rounds - 1; i >= 0; i--) {
        uint32_t x2 = y1 ^ y3;
        uint32_t n0 = c->inverse[0][y1 ^ keys[2 * i]];
        uint32_t n1 = c->inverse[1][x2 ^ y2 ^ keys[2 * i + 1]];
        uint32_t n2 = c->inverse[2][x2 ^ c->c2];
        uint32_t n3 = c->inverse[3][y0 ^ y3];
        y0 = n0;
        y1 = n1;
        y2 = n2;
        y3 = n3;
    }
    return ((uint64_t)y0 << 48) | ((uint64_t)y1 << 32) | ((uint64_t)y2 << 16) | y3;
}

static int RowCipher_init(RowCipher *self, PyObject *args, PyObject *kwds) {
    PyObject *tables;
    unsigned int c2;
    static char *kwlist[] = {"tables", "c2", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OI", kwlist, &tables, &c2)) return -1;
    PyObject *seq = PySequence_Fast(tables, "tables must be a sequence of 8 buffers");
    if (seq == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 8) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "tables must hold 8 row tables");
        return -1;
    }
    for (Py_ssize_t t = 0; t < 8; t++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, t), &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(seq);
            return -1;
        }
        if (view.len != (Py_ssize_t)sizeof(self->forward[0])) {
            PyBuffer_Release(&view);
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "each row table holds 65,536 uint16 values");
            return -1;
        }
        memcpy(t < 4 ? self->forward[t] : self->inverse[t - 4], view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
    }
    Py_DECREF(seq);
    self->c2 = (uint16_t)c2;
    self->split_ok = 1;
    for (int t = 0; t < 4; t++) {
        self->split_ok &= split_table(self->forward[t], self->forward_high[t], self->forward_low[t]);
        self->split_ok &= split_table(self->inverse[t], self->inverse_high[t], self->inverse_low[t]);
    }
    return 0;
}

/* (keys, blocks) -> bytes: every 8-byte block of ``blocks`` through the rounds of ``keys``. */
static PyObject *run(RowCipher *self, PyObject *const *args, Py_ssize_t nargs, int decrypt) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (round_keys, blocks)");
        return NULL;
    }
    Py_buffer keys, blocks;
    if (PyObject_GetBuffer(args[0], &keys, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[1], &blocks, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&keys);
        return NULL;
    }
    PyObject *out = NULL;
    if (keys.len % 4 != 0 || blocks.len % BLOCK_SIZE != 0) {
        PyErr_SetString(PyExc_ValueError, "round keys are uint16 pairs, blocks 8 bytes each");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, blocks.len);
    if (out == NULL) goto done;
    {
        Py_ssize_t rounds = keys.len / 4;
        uint16_t *round_keys = PyMem_Malloc((size_t)keys.len);
        if (round_keys == NULL) {
            Py_CLEAR(out);
            PyErr_NoMemory();
            goto done;
        }
        memcpy(round_keys, keys.buf, (size_t)keys.len); /* aligned copy of the caller's bytes */
        const unsigned char *src = blocks.buf;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
        Py_ssize_t n = blocks.len / BLOCK_SIZE;
        if (n <= SPLIT_MAX_BLOCKS && self->split_ok) {
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t x = load_be64(src + BLOCK_SIZE * i);
                x = decrypt ? decrypt_one_split(self, round_keys, rounds, x)
                            : encrypt_one_split(self, round_keys, rounds, x);
                store_be64(dst + BLOCK_SIZE * i, x);
            }
        } else if (n > 1024) {
            Py_BEGIN_ALLOW_THREADS
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t x = load_be64(src + BLOCK_SIZE * i);
                x = decrypt ? decrypt_one(self, round_keys, rounds, x)
                            : encrypt_one(self, round_keys, rounds, x);
                store_be64(dst + BLOCK_SIZE * i, x);
            }
            Py_END_ALLOW_THREADS
        } else {
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t x = load_be64(src + BLOCK_SIZE * i);
                x = decrypt ? decrypt_one(self, round_keys, rounds, x)
                            : encrypt_one(self, round_keys, rounds, x);
                store_be64(dst + BLOCK_SIZE * i, x);
            }
        }
        PyMem_Free(round_keys);
    }
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&blocks);
    return out;
}

static PyObject *RowCipher_encrypt(RowCipher *self, PyObject *const *args, Py_ssize_t nargs) {
    return run(self, args, nargs, 0);
}

static PyObject *RowCipher_decrypt(RowCipher *self, PyObject *const *args, Py_ssize_t nargs) {
    return run(self, args, nargs, 1);
}

static PyMethodDef RowCipher_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))RowCipher_encrypt, METH_FASTCALL,
     "encrypt(round_keys, blocks) -> bytes: each 8-byte block through the rounds."},
    {"decrypt", (PyCFunction)(void (*)(void))RowCipher_decrypt, METH_FASTCALL,
     "decrypt(round_keys, blocks) -> bytes: each 8-byte block through the rounds undone."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef RowCipher_members[] = {
    {"split", T_INT, offsetof(RowCipher, split_ok), READONLY,
     "1 if the tables split by input byte (lone blocks then use the 8 KiB tables)."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject RowCipherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "protocol._skinny_rows.RowCipher",
    .tp_doc = "SKINNY-64 row loop over tables built by protocol.skinny.",
    .tp_basicsize = sizeof(RowCipher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RowCipher_init,
    .tp_methods = RowCipher_methods,
    .tp_members = RowCipher_members,
};


/* --- bit-sliced batch encryption ---------------------------------------------------------- */

/* 256 lanes (blocks) as four 64-bit words; GCC and clang vector extensions, compiled to AVX2
 * where the CPU has it (a second copy of the function, chosen at load time), else to SSE2 or
 * plain 64-bit operations. */
typedef uint64_t lanes_t __attribute__((vector_size(32)));
#define LANE_WORDS 4
#define PASS_LANES (64 * LANE_WORDS)
#define MAX_ROUNDS 40
#define KEYED_PLANES 32 /* round keys touch rows 0 and 1: cells 0-7, 4 bits each */
#define C2_PLANE 34     /* the constant c2 = 0x2 of row 2: cell 8, bit x1 */

#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SLICED_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SLICED_CLONES
#define SLICED_CLONES
#endif

/* ShiftRows (paper, section 2.3): cell i of the new state is cell SHIFT_ROWS[i] of the old. */
static const int SHIFT_ROWS[16] = {0, 1, 2, 3, 7, 4, 5, 6, 10, 11, 8, 9, 13, 14, 15, 12};

/* Transpose the 64 x 64 bit matrix held in word g of a[0..63], for the four g at once (Hacker's
 * Delight, 7-3): row i, bit 63 - j becomes row j, bit 63 - i. Blocks in, bit-planes out, and
 * the same call turns planes back into blocks. */
static inline void transpose(lanes_t a[64]) {
    uint64_t m = 0x00000000FFFFFFFFULL;
    for (int j = 32; j != 0; j >>= 1, m ^= m << j) {
        lanes_t mask = {m, m, m, m};
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            lanes_t t = (a[k] ^ (a[k | j] >> j)) & mask;
            a[k] ^= t;
            a[k | j] ^= t << j;
        }
    }
}

/* SubCells of one cell (bits x3..x0 in p[0..3]): x0 ^= NOT(x3 OR x2), four times with the
 * bits renamed between (paper, section 2.3). */
static inline void sub_cell(lanes_t p[4]) {
    lanes_t x3 = p[0], x2 = p[1], x1 = p[2], x0 = p[3];
    x0 ^= ~(x3 | x2);
    x3 ^= ~(x2 | x1);
    x2 ^= ~(x1 | x0);
    x1 ^= ~(x0 | x3);
    p[0] = x0;
    p[1] = x3;
    p[2] = x2;
    p[3] = x1;
}

/* The rounds on one pass. The round key of a lane depends on the lane's key: bit b of round key
 * r, over the 256 lanes, is lut[index[KEYED_PLANES * r + b]], where index holds, for each of
 * the pass's keys (up to LUT_KEYS), that key's bit, side by side, and lut[subset] is the mask of
 * the lanes of the keys in subset (see encrypt_sliced). Nothing of 40 rounds x 32 planes x 256
 * lanes is written out: a pass reads its masks from a table of at most 256 entries.
 *
 * One column at a time: the four cells ShiftRows brings into column j are read, put through
 * SubCells, AddConstants and AddRoundTweakey, and MixColumns writes the new column, so each
 * plane is loaded and stored once per round. */
static inline void encrypt_planes(lanes_t s[64], const lanes_t *lut, const uint8_t *index,
                                  int rounds) {
    lanes_t other[64];
    lanes_t *cur = s, *next = other;
    const lanes_t ones = {~0ULL, ~0ULL, ~0ULL, ~0ULL};
    for (int r = 0; r < rounds; r++) {
        const uint8_t *key = index + KEYED_PLANES * r;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            /* Row 0 is not shifted; row 1 cell 4 + j comes from SHIFT_ROWS[4 + j], and so on. */
            int a = SHIFT_ROWS[j], b = SHIFT_ROWS[4 + j], c = SHIFT_ROWS[8 + j],
                d = SHIFT_ROWS[12 + j];
            lanes_t x0[4], x1[4], x2[4], x3[4];
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                x0[p] = cur[4 * a + p];
                x1[p] = cur[4 * b + p];
                x2[p] = cur[4 * c + p];
                x3[p] = cur[4 * d + p];
            }
            sub_cell(x0);
            sub_cell(x1);
            sub_cell(x2);
            sub_cell(x3);
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                x0[p] ^= lut[key[4 * a + p]]; /* rows 0 and 1 carry the round tweakey */
                x1[p] ^= lut[key[4 * b + p]];
            }
            if (4 * c + 2 == C2_PLANE) x2[2] ^= ones;
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                /* MixColumns: rows (x0, x1, x2, x3) -> (x0^x2^x3, x0, x1^x2, x0^x2). */
                lanes_t x02 = x0[p] ^ x2[p];
                next[4 * j + p] = x02 ^ x3[p];
                next[4 * (4 + j) + p] = x0[p];
                next[4 * (8 + j) + p] = x1[p] ^ x2[p];
                next[4 * (12 + j) + p] = x02;
            }
        }
        lanes_t *swap = cur;
        cur = next;
        next = swap;
    }
    if (cur != s) memcpy(s, cur, sizeof other);
}

/* Lanes [from, to) of a pass set in *mask (lane l is bit 63 - l % 64 of word l / 64). */
static inline void set_lanes(lanes_t *mask, Py_ssize_t from, Py_ssize_t to) {
    while (from < to) {
        Py_ssize_t word = from / 64, stop = (word + 1) * 64 < to ? (word + 1) * 64 : to;
        int width = (int)(stop - from), shift = 64 - (int)(from % 64) - width;
        uint64_t bits = width == 64 ? ~0ULL : ((1ULL << width) - 1) << shift;
        (*mask)[word] |= bits;
        from = stop;
    }
}

#define LUT_KEYS 8 /* a pass holds blocks of at most this many keys (its table: 2^8 masks) */

/* `count` consecutive blocks under key `key` (the caller checked both). */
typedef struct {
    Py_ssize_t key, count;
} Run;

/* Encrypt n blocks (big-endian uint64 in src) into dst: the runs, in order, cover them, each
 * under its key. key_bits[k][KEYED_PLANES * r + b] is bit b of key k's round key r (0 or 1).
 *
 * A pass takes up to PASS_LANES blocks and ends early at a (LUT_KEYS + 1)th key, so that its
 * masks are a table of every subset of its keys: lut[subset] = the lanes of those keys, and
 * index[plane] = the keys' bits of that plane side by side (key k at bit k). */
SLICED_CLONES
static void encrypt_sliced(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
                           const Run *runs, Py_ssize_t nruns, const uint8_t *const *key_bits,
                           int rounds) {
    lanes_t lut[1 << LUT_KEYS];
    uint8_t index[MAX_ROUNDS * KEYED_PLANES];
    int planes = rounds * KEYED_PLANES;
    Py_ssize_t run = 0, used = 0; /* the run being encrypted, and how much of it is done */
    for (Py_ssize_t start = 0; start < n;) {
        Py_ssize_t pass_key[LUT_KEYS];
        lanes_t pass_lanes[LUT_KEYS];
        int keys = 0;
        Py_ssize_t count = 0;
        while (count < PASS_LANES && run < nruns) {
            Py_ssize_t left = runs[run].count - used;
            if (left == 0) {
                run++;
                used = 0;
                continue;
            }
            int k = 0;
            while (k < keys && pass_key[k] != runs[run].key) k++;
            if (k == keys) {
                if (keys == LUT_KEYS) break; /* one key too many: the next pass */
                pass_key[k] = runs[run].key;
                pass_lanes[k] = (lanes_t){0, 0, 0, 0};
                keys++;
            }
            Py_ssize_t take = left < PASS_LANES - count ? left : PASS_LANES - count;
            set_lanes(&pass_lanes[k], count, count + take);
            count += take;
            used += take;
        }
        for (int subset = 0; subset < (1 << keys); subset++) {
            lanes_t m = {0, 0, 0, 0};
            for (int k = 0; k < keys; k++)
                if (subset >> k & 1) m |= pass_lanes[k];
            lut[subset] = m;
        }
        memset(index, 0, (size_t)planes);
        for (int k = 0; k < keys; k++) {
            const uint8_t *bits = key_bits[pass_key[k]];
            for (int i = 0; i < planes; i++) index[i] |= (uint8_t)(bits[i] << k);
        }
        lanes_t state[64];
        for (int i = 0; i < 64; i++) {
            for (int w = 0; w < LANE_WORDS; w++) {
                Py_ssize_t lane = w * 64 + i;
                state[i][w] = lane < count ? load_be64(src + BLOCK_SIZE * (start + lane)) : 0;
            }
        }
        transpose(state);
        encrypt_planes(state, lut, index, rounds);
        transpose(state);
        for (int i = 0; i < 64; i++) {
            for (int w = 0; w < LANE_WORDS; w++) {
                Py_ssize_t lane = w * 64 + i;
                if (lane < count) store_be64(dst + BLOCK_SIZE * (start + lane), state[i][w]);
            }
        }
        start += count;
    }
}

/* The round keys of a call: buffers of KEYED_PLANES bytes per round, each 0 or 1 (byte
 * KEYED_PLANES * r + b is bit b of round key r: protocol/skinny.py's _sliced_round_keys,
 * expanded once per key there), all with the same number of rounds. */
typedef struct {
    PyObject *seq;
    Py_buffer *views;
    const uint8_t **bits;
    Py_ssize_t count, held;
    int rounds;
} RoundKeys;

static int round_keys_open(RoundKeys *k, PyObject *arg) {
    memset(k, 0, sizeof *k);
    k->rounds = -1;
    k->seq = PySequence_Fast(arg, "round_keys must be a sequence of buffers");
    if (k->seq == NULL) return -1;
    k->count = PySequence_Fast_GET_SIZE(k->seq);
    k->views = PyMem_Calloc((size_t)(k->count ? k->count : 1), sizeof(Py_buffer));
    k->bits = PyMem_Calloc((size_t)(k->count ? k->count : 1), sizeof(uint8_t *));
    if (k->views == NULL || k->bits == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (; k->held < k->count; k->held++) {
        Py_buffer *view = &k->views[k->held];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(k->seq, k->held), view, PyBUF_SIMPLE) < 0)
            return -1;
        Py_ssize_t len = view->len;
        const uint8_t *bits = view->buf;
        uint8_t any = 0;
        for (Py_ssize_t i = 0; i < len; i++) any |= bits[i];
        if (len % KEYED_PLANES != 0 || len == 0 || len / KEYED_PLANES > MAX_ROUNDS ||
            (k->rounds >= 0 && len / KEYED_PLANES != k->rounds) || any > 1) {
            k->held++;
            PyErr_SetString(PyExc_ValueError,
                            "round keys are 32 bytes of 0 or 1 per round, 1 to 40 rounds, "
                            "the same number for every key");
            return -1;
        }
        k->rounds = (int)(len / KEYED_PLANES);
        k->bits[k->held] = bits;
    }
    return 0;
}

static void round_keys_close(RoundKeys *k) {
    for (Py_ssize_t i = 0; i < k->held; i++) PyBuffer_Release(&k->views[i]);
    PyMem_Free((void *)k->bits);
    PyMem_Free(k->views);
    Py_XDECREF(k->seq);
}

/* Encrypt the n blocks of src, run after run, into a new bytes object. */
static PyObject *encrypt_all(const RoundKeys *keys, const unsigned char *src, Py_ssize_t n,
                             const Run *runs, Py_ssize_t nruns) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * BLOCK_SIZE);
    if (out == NULL || n == 0) return out;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    encrypt_sliced(src, dst, n, runs, nruns, keys->bits, keys->rounds);
    Py_END_ALLOW_THREADS
    return out;
}

/* encrypt_runs(round_keys, runs, blocks) -> bytes.
 *
 * runs: a sequence of (key index, count) covering the concatenated 8-byte blocks in order. */
static PyObject *encrypt_runs(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (round_keys, runs, blocks)");
        return NULL;
    }
    RoundKeys keys;
    PyObject *out = NULL, *runs = NULL;
    Py_buffer blocks = {0};
    Run *parsed = NULL;
    if (round_keys_open(&keys, args[0]) < 0) goto done;
    runs = PySequence_Fast(args[1], "runs must be a sequence of (key index, count)");
    if (runs == NULL) goto done;
    if (PyObject_GetBuffer(args[2], &blocks, PyBUF_SIMPLE) < 0) goto done;
    if (blocks.len % BLOCK_SIZE != 0) {
        PyErr_SetString(PyExc_ValueError, "blocks must be 8 bytes each");
        goto done;
    }
    Py_ssize_t n = blocks.len / BLOCK_SIZE, filled = 0, nruns = PySequence_Fast_GET_SIZE(runs);
    parsed = PyMem_Malloc((size_t)(nruns ? nruns : 1) * sizeof(Run));
    if (parsed == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nruns; i++) {
        Py_ssize_t key, count;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(runs, i), "nn;runs hold (key, count)",
                              &key, &count))
            goto done;
        if (key < 0 || key >= keys.count || count < 0 || count > n - filled) {
            PyErr_SetString(PyExc_ValueError, "a run names no key or goes past the blocks");
            goto done;
        }
        parsed[i] = (Run){key, count};
        filled += count;
    }
    if (filled != n) {
        PyErr_SetString(PyExc_ValueError, "the runs do not cover every block");
        goto done;
    }
    out = encrypt_all(&keys, blocks.buf, n, parsed, nruns);
done:
    PyMem_Free(parsed);
    if (blocks.obj != NULL) PyBuffer_Release(&blocks);
    Py_XDECREF(runs);
    round_keys_close(&keys);
    return out;
}

/* encrypt_counters(round_keys, runs) -> bytes.
 *
 * runs: a sequence of (key index, first, step, count); a run stands for the count 64-bit
 * blocks first, first + step, ... (modulo 2**64, big-endian), as EBID plaintexts of
 * consecutive epochs are (protocol/ebid.py says how). The ciphertexts, run after run. */
static PyObject *encrypt_counters(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (round_keys, runs)");
        return NULL;
    }
    RoundKeys keys;
    PyObject *out = NULL, *runs = NULL;
    Run *parsed = NULL;
    unsigned long long *firsts = NULL, *steps = NULL;
    unsigned char *src = NULL;
    Py_ssize_t n = 0;
    if (round_keys_open(&keys, args[0]) < 0) goto done;
    runs = PySequence_Fast(args[1], "runs must be a sequence of (key, first, step, count)");
    if (runs == NULL) goto done;
    Py_ssize_t nruns = PySequence_Fast_GET_SIZE(runs);
    size_t slots = (size_t)(nruns ? nruns : 1);
    parsed = PyMem_Malloc(slots * sizeof(Run));
    firsts = PyMem_Malloc(slots * sizeof(unsigned long long));
    steps = PyMem_Malloc(slots * sizeof(unsigned long long));
    if (parsed == NULL || firsts == NULL || steps == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nruns; i++) {
        Py_ssize_t key, count;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(runs, i),
                              "nKKn;runs hold (key, first, step, count)", &key, &firsts[i],
                              &steps[i], &count))
            goto done;
        if (key < 0 || key >= keys.count || count < 0 || count > PY_SSIZE_T_MAX / 16 - n) {
            PyErr_SetString(PyExc_ValueError, "a run names no key or is too long");
            goto done;
        }
        parsed[i] = (Run){key, count};
        n += count;
    }
    src = PyMem_Malloc((size_t)(n ? n : 1) * BLOCK_SIZE);
    if (src == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *p = src;
    for (Py_ssize_t i = 0; i < nruns; i++) {
        unsigned long long block = firsts[i];
        for (Py_ssize_t j = 0; j < parsed[i].count; j++, block += steps[i], p += BLOCK_SIZE)
            store_be64(p, block);
    }
    out = encrypt_all(&keys, src, n, parsed, nruns);
done:
    PyMem_Free(parsed);
    PyMem_Free(firsts);
    PyMem_Free(steps);
    PyMem_Free(src);
    Py_XDECREF(runs);
    round_keys_close(&keys);
    return out;
}

static PyMethodDef module_methods[] = {
    {"encrypt_runs", (PyCFunction)(void (*)(void))encrypt_runs, METH_FASTCALL,
     "encrypt_runs(round_keys, runs, blocks) -> bytes: SKINNY-64 bit-sliced, each run of "
     "blocks under its own key schedule (KeySchedule.rows as uint16 pairs)."},
    {"encrypt_counters", (PyCFunction)(void (*)(void))encrypt_counters, METH_FASTCALL,
     "encrypt_counters(round_keys, runs) -> bytes: encrypt_runs of the blocks first, "
     "first + step, ... of each run (key index, first, step, count)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocol._skinny_rows",
    .m_doc = "The SKINNY-64 row loop of protocol.skinny, compiled, and its bit-sliced batch.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__skinny_rows(void) {
    if (PyType_Ready(&RowCipherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&RowCipherType);
    if (PyModule_AddObject(m, "RowCipher", (PyObject *)&RowCipherType) < 0) {
        Py_DECREF(&RowCipherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
