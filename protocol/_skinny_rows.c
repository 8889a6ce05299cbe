/* The scalar row loop of protocol/skinny.py, compiled.
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
 * copies of the tables.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define TABLE_ENTRIES 65536
#define BLOCK_SIZE 8

typedef struct {
    PyObject_HEAD
    uint16_t forward[4][TABLE_ENTRIES]; /* T0..T3 of skinny.py */
    uint16_t inverse[4][TABLE_ENTRIES]; /* I0..I3 of skinny.py */
    uint16_t c2;                        /* the row-2 constant after ShiftRows */
} RowCipher;

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
        if (n > 1024) {
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

static PyTypeObject RowCipherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "protocol._skinny_rows.RowCipher",
    .tp_doc = "SKINNY-64 row loop over tables built by protocol.skinny.",
    .tp_basicsize = sizeof(RowCipher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RowCipher_init,
    .tp_methods = RowCipher_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocol._skinny_rows",
    .m_doc = "The scalar SKINNY-64 row loop of protocol.skinny, compiled.",
    .m_size = -1,
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
