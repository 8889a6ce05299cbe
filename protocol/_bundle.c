/* The byte work of a tuple bundle, compiled: the ECC input blocks and the bundle's JSON.
 *
 * protocol/tuples.py defines the bundle [robert.md: Tuple bundle]: a JSON list of
 * {"epochId": int, "key": {"ebid": base64, "ecc": base64}}, one per epoch, written without
 * spaces in that key order (tuples.serialise_tuples). Minting a status answer's bundle means
 * writing 384 of them; in Python that cost more than the cipher. This file writes exactly the
 * bytes serialise_tuples writes (tests/protocol/test_tuples.py compares them on every epoch
 * width), and the blocks AES-256-ECB under K_G turns into ECC pads (protocol/ebid.py:
 * EBID || 8 zero bytes). It holds no key and no protocol constant beyond that layout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define EBID_SIZE 8

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* {"epochId":<digits>,"key":{"ebid":"<12>","ecc":"<4>"}} */
static const char HEAD[] = "{\"epochId\":";
static const char MIDDLE[] = ",\"key\":{\"ebid\":\"";
static const char TAIL[] = "\",\"ecc\":\"";
static const char END[] = "\"}}";
#define LEN(s) (sizeof(s) - 1)
#define FIXED (LEN(HEAD) + LEN(MIDDLE) + 12 + LEN(TAIL) + 4 + LEN(END))

static int digits_of(unsigned long long v) {
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Standard base64 with padding of 8 bytes: 12 characters, the last one '='. */
static char *b64_8(char *out, const unsigned char *in) {
    for (int i = 0; i < 6; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = B64[v & 63];
    }
    uint32_t v = ((uint32_t)in[6] << 16) | ((uint32_t)in[7] << 8);
    *out++ = B64[v >> 18];
    *out++ = B64[(v >> 12) & 63];
    *out++ = B64[(v >> 6) & 63];
    *out++ = '=';
    return out;
}

/* tuples_json(first_epoch, ebids, eccs) -> bytes: the bundle plaintext of consecutive epochs
 * first_epoch, first_epoch + 1, ..., one per 8-byte EBID of ebids and byte of eccs. */
static PyObject *tuples_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (first_epoch, ebids, eccs)");
        return NULL;
    }
    unsigned long long first = PyLong_AsUnsignedLongLong(args[0]);
    if (first == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    Py_buffer ebids, eccs;
    if (PyObject_GetBuffer(args[1], &ebids, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(args[2], &eccs, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&ebids);
        return NULL;
    }
    PyObject *out = NULL;
    Py_ssize_t n = eccs.len;
    if (ebids.len != EBID_SIZE * n) {
        PyErr_SetString(PyExc_ValueError, "one 8-byte EBID per ECC byte");
        goto done;
    }
    if (n > 0 && first > 0xFFFFFFFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "epochs out of range");
        goto done;
    }
    /* Exact size: brackets, separators, the fixed part of each item and its digits. */
    Py_ssize_t size = 2 + (n > 0 ? n - 1 : 0) + n * (Py_ssize_t)FIXED;
    for (Py_ssize_t i = 0; i < n;) {
        int d = digits_of(first + (unsigned long long)i);
        unsigned long long next_width = 1;
        for (int k = 0; k < d; k++) next_width *= 10; /* first epoch with d + 1 digits */
        Py_ssize_t until = (Py_ssize_t)(next_width - first);
        if (until > n) until = n;
        size += (until - i) * d;
        i = until;
    }
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) goto done;
    char *p = PyBytes_AS_STRING(out);
    const unsigned char *e = ebids.buf, *c = eccs.buf;
    *p++ = '[';
    /* The epochId in decimal, most significant digit first, counted up in place (a carry
     * past the first digit widens it) rather than divided out for every item. */
    char digits[24];
    int d = 0;
    {
        char reversed[24];
        unsigned long long v = first;
        do {
            reversed[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (int k = 0; k < d; k++) digits[k] = reversed[d - 1 - k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        memcpy(p, HEAD, LEN(HEAD));
        p += LEN(HEAD);
        memcpy(p, digits, (size_t)d);
        p += d;
        int k = d - 1;
        while (k >= 0 && digits[k] == '9') digits[k--] = '0';
        if (k >= 0) {
            digits[k]++;
        } else { /* 9...9 + 1 = 10...0 */
            memmove(digits + 1, digits, (size_t)d);
            digits[0] = '1';
            d++;
        }
        memcpy(p, MIDDLE, LEN(MIDDLE));
        p += LEN(MIDDLE);
        p = b64_8(p, e + EBID_SIZE * i);
        memcpy(p, TAIL, LEN(TAIL));
        p += LEN(TAIL);
        *p++ = B64[c[i] >> 2];
        *p++ = B64[(c[i] & 3) << 4];
        *p++ = '=';
        *p++ = '=';
        memcpy(p, END, LEN(END));
        p += LEN(END);
    }
    *p++ = ']';
    if (p != PyBytes_AS_STRING(out) + size) { /* the size computation is this file's bug */
        Py_CLEAR(out);
        PyErr_SetString(PyExc_SystemError, "tuples_json wrote an unexpected length");
    }
done:
    PyBuffer_Release(&ebids);
    PyBuffer_Release(&eccs);
    return out;
}

/* ecc_blocks(ebids) -> bytes: EBID || 8 zero bytes for each 8-byte EBID, the AES-256-ECB
 * input whose first output byte is an ECC pad. */
static PyObject *ecc_blocks(PyObject *module, PyObject *arg) {
    Py_buffer ebids;
    if (PyObject_GetBuffer(arg, &ebids, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *out = NULL;
    if (ebids.len % EBID_SIZE != 0) {
        PyErr_SetString(PyExc_ValueError, "EBIDs are 8 bytes each");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, 2 * ebids.len);
    if (out == NULL) goto done;
    char *p = PyBytes_AS_STRING(out);
    const char *e = ebids.buf;
    for (Py_ssize_t i = 0; i < ebids.len; i += EBID_SIZE) {
        memcpy(p, e + i, EBID_SIZE);
        memset(p + EBID_SIZE, 0, EBID_SIZE);
        p += 2 * EBID_SIZE;
    }
done:
    PyBuffer_Release(&ebids);
    return out;
}

static PyMethodDef methods[] = {
    {"tuples_json", (PyCFunction)(void (*)(void))tuples_json, METH_FASTCALL,
     "tuples_json(first_epoch, ebids, eccs) -> bytes: the bundle plaintext, as "
     "protocol.tuples.serialise_tuples writes it, of consecutive epochs."},
    {"ecc_blocks", ecc_blocks, METH_O,
     "ecc_blocks(ebids) -> bytes: EBID || 8 zero bytes per EBID (the ECC pads' AES input)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "protocol._bundle",
    .m_doc = "The byte work of a tuple bundle (JSON plaintext, ECC blocks), compiled.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__bundle(void) { return PyModule_Create(&module); }
