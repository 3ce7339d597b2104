/* The SFU's per-packet forwarding loop in C (`parlour.media.fastpath` wraps it).
 *
 * Python decides *what* is forwarded (subscriptions, layers, switch-off, NACKs, RTCP);
 * this module does *the forwarding* of a producer's packets (of a simulcast producer, one
 * FanOut per layer, of the consumers that forward that layer steadily):
 *
 *   FanOut.forward(packet) → for each Lane: rewrite (as rewrite.RtpRewriter does, byte for
 *   byte, and simulcast.Vp8Rewriter's PictureID/TL0PICIDX shift) → SRTP protect (libsrtp, through the function pointer of pylibsrtp's own cffi
 *   binding: one libsrtp in the process) → sendmmsg, one system call per socket per packet.
 *
 * A Lane owns one consumer's rewrite state while it exists (`dump`/`load` hand it to the
 * Python `RtpRewriter` and back, for NACK repairs and Sender Reports). An Egress is one
 * subscriber transport's send side: its SRTP context and where datagrams go (a UDP socket
 * and address, a connected socket, or a Python callable), with its counters.
 *
 * The reference implementation is the Python one (router.Consumer.forward,
 * rewrite.RtpRewriter.rewrite, srtp.SrtpSession.protect, dtls.DtlsSrtpTransport.send_rtp);
 * tests/unit/media/test_fastpath.py checks both give the same bytes for the same input.
 * Header-extension blocks that are not a plain one-byte block are handed back to the
 * Python ExtensionRewriter (`_rewrite`), and one-byte blocks use its compiled plan
 * (`byte_plan`), so extension semantics stay defined in one place.
 *
 * Single-threaded: called with the GIL held from the event loop thread only.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_PACKET 1500                /* srtp.MAX_PACKET */
#define BUF_SIZE (MAX_PACKET + 160)    /* room for the SRTP tag */
#define MAX_BATCH 64                   /* datagrams per sendmmsg */

typedef int (*srtp_protect_fn)(void *ctx, void *hdr, int *len);

static srtp_protect_fn g_protect = NULL;
static srtp_protect_fn g_unprotect = NULL;  /* same signature: srtp_unprotect */
static PyObject *g_rtp_error = NULL;   /* parlour.media.rtp.RtpError */
static PyObject *s_fileno, *s_rewrite, *s_byte_plan;
static int g_busy = 0;                  /* FanOut.forward is not re-entrant */

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An exception raised by Python code we called: RtpError means "drop the packet" (as the
 * Python path does); anything else propagates. Returns -1 (drop) or -2 (propagate). */
static int callback_failed(void) {
    if (g_rtp_error != NULL && PyErr_ExceptionMatches(g_rtp_error)) {
        PyErr_Clear();
        return -1;
    }
    return -2;
}

/* ------------------------------------------------------------------------------------ */
/* Egress: one subscriber transport's SRTP send side                                    */

typedef struct {
    PyObject_HEAD
    PyObject *session;   /* keeps the libsrtp context alive; NULL: not keyed */
    void *ctx;           /* srtp_t */
    PyObject *send;      /* Python callable: send(bytes), may raise OSError */
    PyObject *sock;      /* a socket object to send on directly, or NULL */
    struct sockaddr_storage addr;
    socklen_t addrlen;   /* 0: `sock` is connected */
    unsigned long long packets, octets, dropped;
} Egress;

static PyTypeObject EgressType;

static int Egress_traverse(Egress *self, visitproc visit, void *arg) {
    Py_VISIT(self->session);
    Py_VISIT(self->send);
    Py_VISIT(self->sock);
    return 0;
}

static int Egress_clear(Egress *self) {
    Py_CLEAR(self->session);
    Py_CLEAR(self->send);
    Py_CLEAR(self->sock);
    self->ctx = NULL;
    return 0;
}

static void Egress_dealloc(Egress *self) {
    PyObject_GC_UnTrack(self);
    Egress_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Egress_init(Egress *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"send", NULL};
    PyObject *send = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O", kwlist, &send)) return -1;
    Egress_clear(self);
    if (send != Py_None) {
        if (!PyCallable_Check(send)) {
            PyErr_SetString(PyExc_TypeError, "send must be callable");
            return -1;
        }
        Py_INCREF(send);
        self->send = send;
    }
    self->addrlen = 0;
    self->packets = self->octets = self->dropped = 0;
    return 0;
}

static PyObject *Egress_set_srtp(Egress *self, PyObject *args) {
    PyObject *session;
    unsigned long long ctx;
    if (!PyArg_ParseTuple(args, "OK", &session, &ctx)) return NULL;
    if (session == Py_None || ctx == 0) {
        Py_CLEAR(self->session);
        self->ctx = NULL;
        Py_RETURN_NONE;
    }
    if (g_protect == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath.configure() was not called");
        return NULL;
    }
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    self->ctx = (void *)(uintptr_t)ctx;
    Py_RETURN_NONE;
}

/* set_sender(send, sock=None, addr=None): datagrams go to `sock` (to `addr`, or connected
 * when addr is None), else through `send`. */
static PyObject *Egress_set_sender(Egress *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"send", "sock", "addr", NULL};
    PyObject *send = Py_None, *sock = Py_None, *addr = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO", kwlist, &send, &sock, &addr))
        return NULL;
    if (send != Py_None && !PyCallable_Check(send)) {
        PyErr_SetString(PyExc_TypeError, "send must be callable");
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    memset(&ss, 0, sizeof ss);
    if (sock != Py_None && addr != Py_None) {
        if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) goto bad_addr;
        /* (host, port) or IPv6's (host, port, flowinfo, scope_id) */
        PyObject *h = PyTuple_GET_ITEM(addr, 0), *p = PyTuple_GET_ITEM(addr, 1);
        if (!PyUnicode_Check(h) || !PyLong_Check(p)) goto bad_addr;
        const char *host = PyUnicode_AsUTF8(h);
        if (host == NULL) return NULL;
        long port = PyLong_AsLong(p);
        if (port == -1 && PyErr_Occurred()) return NULL;
        if (port < 0 || port > 65535) goto bad_addr;
        PyObject *family = PyObject_GetAttrString(sock, "family");
        if (family == NULL) return NULL;
        long fam = PyLong_AsLong(family);
        Py_DECREF(family);
        if (fam == -1 && PyErr_Occurred()) return NULL;
        char buf[INET6_ADDRSTRLEN + 8];
        strncpy(buf, host, sizeof buf - 1);
        buf[sizeof buf - 1] = 0;
        char *pct = strchr(buf, '%');
        if (pct) *pct = 0;  /* "%scope" in the text: the tuple's scope_id says it */
        if (fam == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1) goto no_fast;
            sslen = sizeof *sin;
        } else if (fam == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1) {
                char mapped[INET6_ADDRSTRLEN + 16];
                snprintf(mapped, sizeof mapped, "::ffff:%s", buf);
                if (inet_pton(AF_INET6, mapped, &sin6->sin6_addr) != 1) goto no_fast;
            }
            if (PyTuple_GET_SIZE(addr) >= 4 && PyLong_Check(PyTuple_GET_ITEM(addr, 3))) {
                unsigned long scope = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
                if (scope == (unsigned long)-1 && PyErr_Occurred()) return NULL;
                sin6->sin6_scope_id = (uint32_t)scope;  /* asyncio's (host, port, flow, scope) */
            }
            sslen = sizeof *sin6;
        } else {
            goto no_fast;
        }
    }
    Py_XINCREF(send == Py_None ? NULL : send);
    Py_XSETREF(self->send, send == Py_None ? NULL : send);
    if (sock != Py_None) Py_INCREF(sock);
    Py_XSETREF(self->sock, sock == Py_None ? NULL : sock);
    self->addr = ss;
    self->addrlen = sslen;
    Py_RETURN_TRUE;
no_fast:  /* an address we cannot parse for this socket: the Python sender it is */
    Py_XINCREF(send == Py_None ? NULL : send);
    Py_XSETREF(self->send, send == Py_None ? NULL : send);
    Py_CLEAR(self->sock);
    self->addrlen = 0;
    Py_RETURN_FALSE;
bad_addr:
    PyErr_SetString(PyExc_ValueError, "addr must be (host, port)");
    return NULL;
}

static int sock_fd(PyObject *sock) {
    PyObject *r = PyObject_CallMethodNoArgs(sock, s_fileno);
    if (r == NULL) {
        PyErr_Clear();
        return -1;
    }
    long fd = PyLong_AsLong(r);
    Py_DECREF(r);
    if (fd == -1 && PyErr_Occurred()) PyErr_Clear();
    return fd < 0 || fd > INT32_MAX ? -1 : (int)fd;
}

/* Protect buf[0:*len] in place. 0 on success; -1: dropped (counted). */
static int egress_protect(Egress *e, uint8_t *buf, int *len) {
    if (e->session == NULL || *len > MAX_PACKET || g_protect(e->ctx, buf, len) != 0) {
        e->dropped++;
        return -1;
    }
    return 0;
}

/* Send one protected datagram through the Python callable. 0 ok/dropped, -1 exception. */
static int egress_call(Egress *e, const uint8_t *buf, int len) {
    if (e->send == NULL) {
        e->dropped++;
        return 0;
    }
    PyObject *data = PyBytes_FromStringAndSize((const char *)buf, len);
    if (data == NULL) return -1;
    PyObject *r = PyObject_CallOneArg(e->send, data);
    Py_DECREF(data);
    if (r == NULL) {
        if (PyErr_ExceptionMatches(PyExc_OSError)) {
            PyErr_Clear();
            e->dropped++;
            return 0;
        }
        return -1;
    }
    Py_DECREF(r);
    e->packets++;
    e->octets += (unsigned long long)len;
    return 0;
}

/* Send one protected datagram directly. */
static void egress_direct(Egress *e, int fd, const uint8_t *buf, int len) {
    ssize_t r;
    do {
        r = e->addrlen ? sendto(fd, buf, (size_t)len, MSG_DONTWAIT,
                                (const struct sockaddr *)&e->addr, e->addrlen)
                       : send(fd, buf, (size_t)len, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        e->dropped++;
    } else {
        e->packets++;
        e->octets += (unsigned long long)len;
    }
}

/* send_rtp(packet): protect and send one RTP packet (DtlsSrtpTransport.send_rtp). */
static PyObject *Egress_send_rtp(Egress *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint8_t buf[BUF_SIZE];
    if (view.len > MAX_PACKET || self->session == NULL) {
        PyBuffer_Release(&view);
        self->dropped++;
        Py_RETURN_NONE;
    }
    int len = (int)view.len;
    memcpy(buf, view.buf, (size_t)len);
    PyBuffer_Release(&view);
    if (egress_protect(self, buf, &len) < 0) Py_RETURN_NONE;
    if (self->sock != NULL) {
        int fd = sock_fd(self->sock);
        if (fd < 0) {
            self->dropped++;
        } else {
            egress_direct(self, fd, buf, len);
        }
        Py_RETURN_NONE;
    }
    if (egress_call(self, buf, len) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Egress_get_keyed(Egress *self, void *closure) {
    return PyBool_FromLong(self->session != NULL);
}

static PyObject *Egress_get_direct(Egress *self, void *closure) {
    return PyBool_FromLong(self->sock != NULL);
}

static PyMemberDef Egress_members[] = {
    {"packets", T_ULONGLONG, offsetof(Egress, packets), 0, "RTP packets sent"},
    {"octets", T_ULONGLONG, offsetof(Egress, octets), 0, "SRTP bytes sent"},
    {"dropped", T_ULONGLONG, offsetof(Egress, dropped), 0,
     "RTP packets dropped (not keyed, protect failed, refused by the kernel)"},
    {NULL}};

static PyGetSetDef Egress_getset[] = {
    {"keyed", (getter)Egress_get_keyed, NULL, "an SRTP context is set", NULL},
    {"direct", (getter)Egress_get_direct, NULL, "datagrams go straight to a socket", NULL},
    {NULL}};

static PyMethodDef Egress_methods[] = {
    {"set_srtp", (PyCFunction)Egress_set_srtp, METH_VARARGS,
     "set_srtp(session, ctx): protect with libsrtp context `ctx` (an address), kept alive "
     "by `session`; (None, 0): not keyed, packets are dropped"},
    {"set_sender", (PyCFunction)(void (*)(void))Egress_set_sender, METH_VARARGS | METH_KEYWORDS,
     "set_sender(send, sock=None, addr=None) -> bool: where datagrams go; True when "
     "they go straight to `sock`"},
    {"send_rtp", (PyCFunction)Egress_send_rtp, METH_O, "protect and send one RTP packet"},
    {NULL}};

static PyTypeObject EgressType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.Egress",
    .tp_basicsize = sizeof(Egress),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Egress(send=None): one subscriber transport's SRTP send side",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Egress_init,
    .tp_dealloc = (destructor)Egress_dealloc,
    .tp_traverse = (traverseproc)Egress_traverse,
    .tp_clear = (inquiry)Egress_clear,
    .tp_methods = Egress_methods,
    .tp_members = Egress_members,
    .tp_getset = Egress_getset,
};

/* ------------------------------------------------------------------------------------ */
/* Tcc: one subscriber transport's transport-wide sequence numbers (rewrite.TransportCc)  */

#define TCC_LOG 4096  /* sends noted between two drains (a feedback every ~100 ms) */

typedef struct {
    PyObject_HEAD
    int ext_id;
    uint8_t hdr;
    long seq, cluster;
    size_t head, count;  /* the log: a ring, oldest overwritten */
    uint16_t lseq[TCC_LOG];
    int32_t lsize[TCC_LOG];
    int32_t lcluster[TCC_LOG];
    double ltime[TCC_LOG];
} Tcc;

static PyTypeObject TccType;

static int Tcc_init(Tcc *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ext_id", NULL};
    int ext_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i", kwlist, &ext_id)) return -1;
    if (ext_id < 1 || ext_id > 14) {
        PyErr_SetString(PyExc_ValueError, "transport-wide-cc id must be 1-14");
        return -1;
    }
    self->ext_id = ext_id;
    self->hdr = (uint8_t)((ext_id << 4) | 1);
    self->seq = self->cluster = 0;
    self->head = self->count = 0;
    return 0;
}

static void tcc_note(Tcc *t, uint16_t seq, int32_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* time.monotonic() */
    size_t i = (t->head + t->count) % TCC_LOG;
    if (t->count == TCC_LOG) {
        t->head = (t->head + 1) % TCC_LOG;
    } else {
        t->count++;
    }
    t->lseq[i] = seq;
    t->lsize[i] = size;
    t->lcluster[i] = (int32_t)t->cluster;
    t->ltime[i] = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* drain() -> [(seq, time, size, cluster)]: what lanes sent since the last drain. */
static PyObject *Tcc_drain(Tcc *self, PyObject *unused) {
    PyObject *list = PyList_New((Py_ssize_t)self->count);
    if (list == NULL) return NULL;
    for (size_t k = 0; k < self->count; k++) {
        size_t i = (self->head + k) % TCC_LOG;
        PyObject *item = Py_BuildValue("(idii)", (int)self->lseq[i], self->ltime[i],
                                       (int)self->lsize[i], (int)self->lcluster[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, item);
    }
    self->head = self->count = 0;
    return list;
}

static PyMemberDef Tcc_members[] = {
    {"ext_id", T_INT, offsetof(Tcc, ext_id), READONLY, "the extension id (1-14)"},
    {"seq", T_LONG, offsetof(Tcc, seq), 0, "the next transport-wide sequence number"},
    {"cluster", T_LONG, offsetof(Tcc, cluster), 0, "the probe cluster of sends now (0: none)"},
    {NULL}};

static PyMethodDef Tcc_methods[] = {
    {"drain", (PyCFunction)Tcc_drain, METH_NOARGS,
     "drain() -> [(seq, monotonic time, size, cluster)] stamped by lanes since the last call"},
    {NULL}};

static PyTypeObject TccType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.Tcc",
    .tp_basicsize = sizeof(Tcc),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tcc(ext_id): transport-wide sequence numbering shared by a subscriber's lanes",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tcc_init,
    .tp_methods = Tcc_methods,
    .tp_members = Tcc_members,
};

/* ------------------------------------------------------------------------------------ */
/* Lane: one consumer's rewrite state and its egress                                    */

typedef struct {
    PyObject_HEAD
    Egress *egress;
    Tcc *tcc;               /* transport-wide CC stamping, or NULL */
    PyObject *ext;          /* ExtensionRewriter, or NULL */
    PyObject *insert;       /* bytes: the block added to packets without one */
    int ext_identity, ext_general;
    uint8_t b0_default;
    uint8_t pt_map[128];    /* publisher PT → ours; 0xFF: not forwarded */
    /* the cached one-byte plan (ExtensionRewriter.byte_plan) */
    Py_ssize_t plan_n, plan_size;
    PyObject *plan_mask, *plan_shape, *plan_keep, *plan_const;
    /* RtpRewriter state */
    uint32_t ssrc;
    int payload_type;
    int64_t seq_off, ts_off, src, cur, hi_seq, hi_ts, step, next_delta;
    int started, has_delta;
    unsigned long long packets, octets;
    /* VP8 numbering of a simulcast consumer (simulcast.Vp8Rewriter's offsets): PictureID
     * and TL0PICIDX shifted in every packet sent; 0 and 0: passed through */
    int vp8_pic_off, vp8_tl0_off;
} Lane;

static PyTypeObject LaneType;

static int Lane_traverse(Lane *self, visitproc visit, void *arg) {
    Py_VISIT(self->egress);
    Py_VISIT(self->tcc);
    Py_VISIT(self->ext);
    Py_VISIT(self->insert);
    Py_VISIT(self->plan_mask);
    Py_VISIT(self->plan_shape);
    Py_VISIT(self->plan_keep);
    Py_VISIT(self->plan_const);
    return 0;
}

static int Lane_clear(Lane *self) {
    Py_CLEAR(self->egress);
    Py_CLEAR(self->tcc);
    Py_CLEAR(self->ext);
    Py_CLEAR(self->insert);
    Py_CLEAR(self->plan_mask);
    Py_CLEAR(self->plan_shape);
    Py_CLEAR(self->plan_keep);
    Py_CLEAR(self->plan_const);
    return 0;
}

static void Lane_dealloc(Lane *self) {
    PyObject_GC_UnTrack(self);
    Lane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Lane(egress, pt_map: bytes[128], extensions: ExtensionRewriter | None, tcc: Tcc | None) */
static int Lane_init(Lane *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"egress", "pt_map", "extensions", "tcc", NULL};
    PyObject *egress, *ext = Py_None, *tcc = Py_None;
    Py_buffer pt;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!y*|OO", kwlist, &EgressType, &egress, &pt,
                                     &ext, &tcc))
        return -1;
    if (tcc != Py_None && !PyObject_TypeCheck(tcc, &TccType)) {
        PyBuffer_Release(&pt);
        PyErr_SetString(PyExc_TypeError, "tcc must be a Tcc or None");
        return -1;
    }
    if (pt.len != 128) {
        PyBuffer_Release(&pt);
        PyErr_SetString(PyExc_ValueError, "pt_map must be 128 bytes");
        return -1;
    }
    memcpy(self->pt_map, pt.buf, 128);
    PyBuffer_Release(&pt);
    Lane_clear(self);
    Py_INCREF(egress);
    self->egress = (Egress *)egress;
    if (tcc != Py_None) {
        Py_INCREF(tcc);
        self->tcc = (Tcc *)tcc;
    }
    self->ext_identity = 0;
    self->ext_general = 0;
    self->plan_n = -1;
    if (ext != Py_None) {
        PyObject *v;
        Py_INCREF(ext);
        self->ext = ext;
        if ((v = PyObject_GetAttrString(ext, "identity")) == NULL) return -1;
        self->ext_identity = PyObject_IsTrue(v);
        Py_DECREF(v);
        if ((v = PyObject_GetAttrString(ext, "_general")) == NULL) return -1;
        self->ext_general = PyObject_IsTrue(v);
        Py_DECREF(v);
        if ((v = PyObject_GetAttrString(ext, "insert_block")) == NULL) return -1;
        if (!PyBytes_Check(v)) {
            Py_DECREF(v);
            PyErr_SetString(PyExc_TypeError, "insert_block must be bytes");
            return -1;
        }
        self->insert = v;
    } else {
        self->insert = PyBytes_FromStringAndSize(NULL, 0);
        if (self->insert == NULL) return -1;
    }
    self->b0_default = PyBytes_GET_SIZE(self->insert) ? 0x90 : 0x80;
    return 0;
}

/* Rewriter state, in RtpRewriter._dump()'s order. */
static PyObject *Lane_dump(Lane *self, PyObject *unused) {
    PyObject *delta = self->has_delta ? PyLong_FromLongLong(self->next_delta) : Py_NewRef(Py_None);
    if (delta == NULL) return NULL;
    return Py_BuildValue("(kiLLLLNiLLKKL)", (unsigned long)self->ssrc, self->payload_type,
                         (long long)self->seq_off, (long long)self->ts_off, (long long)self->src,
                         (long long)self->cur, delta, self->started, (long long)self->hi_seq,
                         (long long)self->hi_ts, self->packets, self->octets,
                         (long long)self->step);
}

static PyObject *Lane_load(Lane *self, PyObject *state) {
    unsigned long ssrc;
    int pt, started;
    long long seq_off, ts_off, src, cur, hi_seq, hi_ts, step;
    unsigned long long packets, octets;
    PyObject *delta;
    if (!PyArg_ParseTuple(state, "kiLLLLOiLLKKL", &ssrc, &pt, &seq_off, &ts_off, &src, &cur,
                          &delta, &started, &hi_seq, &hi_ts, &packets, &octets, &step))
        return NULL;
    long long d = 0;
    if (delta != Py_None) {
        d = PyLong_AsLongLong(delta);
        if (d == -1 && PyErr_Occurred()) return NULL;
    }
    self->ssrc = (uint32_t)ssrc;
    self->payload_type = pt;
    self->seq_off = seq_off;
    self->ts_off = ts_off;
    self->src = src;
    self->cur = cur;
    self->has_delta = delta != Py_None;
    self->next_delta = d;
    self->started = started;
    self->hi_seq = hi_seq;
    self->hi_ts = hi_ts;
    self->packets = packets;
    self->octets = octets;
    self->step = step;
    Py_RETURN_NONE;
}

/* What one rewritten packet is made of (computed before any state changes). */
typedef struct {
    uint8_t b0;
    const uint8_t *csrc;        /* pkt[12:ext_start] */
    Py_ssize_t csrc_len;
    const uint8_t *block;       /* NULL with plan: computed from `pkt + plan_at` */
    Py_ssize_t block_len;
    PyObject *block_obj;        /* owned bytes-like from Python, or NULL */
    Py_buffer block_view;
    int plan;                   /* block = plan applied to pkt[plan_at: plan_at + plan_n] */
    Py_ssize_t plan_at;
    Py_ssize_t start;           /* payload start */
    Py_ssize_t octets;
    int tcc_mode;               /* 0: not stamped; 1: a new block; 2: appended to the block */
    uint16_t tcc_seq;
} Layout;

static void layout_release(Layout *l) {
    if (l->block_obj != NULL) {
        PyBuffer_Release(&l->block_view);
        Py_CLEAR(l->block_obj);
    }
}

/* The Python ExtensionRewriter's answer for pkt[s:e]: 0 ok, -1 drop, -2 exception. */
static int ext_python(Lane *lane, PyObject *pkt, Py_ssize_t s, Py_ssize_t e, Layout *out) {
    PyObject *r = PyObject_CallMethod(lane->ext, "_rewrite", "Onn", pkt, s, e);
    if (r == NULL) return callback_failed();
    if (PyObject_GetBuffer(r, &out->block_view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(r);
        return -2;
    }
    out->block_obj = r;
    out->block = out->block_view.buf;
    out->block_len = out->block_view.len;
    return 0;
}

/* ExtensionRewriter._rewrite(pkt, s, e), with the one-byte plan applied here. */
static int ext_rewrite(Lane *lane, PyObject *pkt_obj, const uint8_t *pkt, Py_ssize_t s,
                       Py_ssize_t e, Layout *out) {
    if (lane->ext_identity) {
        out->block = pkt + s;
        out->block_len = e - s;
        return 0;
    }
    if (lane->ext_general || pkt[s] != 0xBE || pkt[s + 1] != 0xDE)
        return ext_python(lane, pkt_obj, s, e, out);
    Py_ssize_t n = e - s;
    int hit = lane->plan_n == n;
    if (hit) {
        const uint8_t *mask = (const uint8_t *)PyBytes_AS_STRING(lane->plan_mask);
        const uint8_t *shape = (const uint8_t *)PyBytes_AS_STRING(lane->plan_shape);
        for (Py_ssize_t i = 0; i < n; i++) {
            if ((pkt[s + i] & mask[i]) != shape[i]) {
                hit = 0;
                break;
            }
        }
    }
    if (!hit) {
        PyObject *plan = PyObject_CallMethod(lane->ext, "byte_plan", "Onn", pkt_obj, s, e);
        if (plan == NULL) return callback_failed();
        if (plan == Py_None) {
            Py_DECREF(plan);
            return ext_python(lane, pkt_obj, s, e, out);
        }
        Py_ssize_t pn, size;
        PyObject *mask, *shape, *keep, *cnst;
        if (!PyArg_ParseTuple(plan, "nSSSSn", &pn, &mask, &shape, &keep, &cnst, &size) ||
            pn != n || PyBytes_GET_SIZE(mask) != n || PyBytes_GET_SIZE(shape) != n ||
            PyBytes_GET_SIZE(keep) != n || PyBytes_GET_SIZE(cnst) != size) {
            Py_DECREF(plan);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad byte plan");
            return -2;
        }
        Py_INCREF(mask);
        Py_XSETREF(lane->plan_mask, mask);
        Py_INCREF(shape);
        Py_XSETREF(lane->plan_shape, shape);
        Py_INCREF(keep);
        Py_XSETREF(lane->plan_keep, keep);
        Py_INCREF(cnst);
        Py_XSETREF(lane->plan_const, cnst);
        lane->plan_n = n;
        lane->plan_size = size;
        Py_DECREF(plan);
    }
    out->plan = 1;
    out->plan_at = s;
    out->block = NULL;
    out->block_len = lane->plan_size;
    return 0;
}

/* Validate `pkt` and work out its layout (rewrite.RtpRewriter.rewrite and _prefix).
 * 0 ok, -1 malformed (drop), -2 Python exception. */
static int lane_layout(Lane *lane, PyObject *pkt_obj, const uint8_t *pkt, Py_ssize_t n,
                       Layout *out) {
    memset(out, 0, sizeof *out);
    if (n < 12) return -1;
    uint8_t b0 = pkt[0];
    if (b0 == 0x80) {
        out->b0 = lane->b0_default;
        out->block = (const uint8_t *)PyBytes_AS_STRING(lane->insert);
        out->block_len = PyBytes_GET_SIZE(lane->insert);
        out->start = 12;
        out->octets = n - 12;
        return 0;
    }
    Py_ssize_t start = n >= 16 ? 16 + ((Py_ssize_t)be16(pkt + 14) << 2) : n + 1;
    if (b0 == 0x90 && lane->ext != NULL && start <= n) {
        int r = ext_rewrite(lane, pkt_obj, pkt, 12, start, out);
        if (r < 0) return r;
        out->b0 = out->block_len ? 0x90 : 0x80;
        out->start = start;
        out->octets = n - start;
        return 0;
    }
    if ((b0 & 0xC0) != 0x80) return -1;
    Py_ssize_t pos = 12 + ((Py_ssize_t)(b0 & 0x0F) << 2);
    if (pos > n) return -1;
    Py_ssize_t ext_start = pos;
    if (b0 & 0x10) {
        if (pos + 4 > n) return -1;
        pos += 4 + ((Py_ssize_t)be16(pkt + pos + 2) << 2);
        if (pos > n) return -1;
        if (lane->ext == NULL) {
            out->block = pkt + ext_start;
            out->block_len = pos - ext_start;
        } else {
            int r = ext_rewrite(lane, pkt_obj, pkt, ext_start, pos, out);
            if (r < 0) return r;
        }
    } else if (lane->ext != NULL) {
        out->block = (const uint8_t *)PyBytes_AS_STRING(lane->insert);
        out->block_len = PyBytes_GET_SIZE(lane->insert);
    }
    Py_ssize_t octets = n - pos;
    if (b0 & 0x20) {
        uint8_t pad = pkt[n - 1];
        if (pad == 0 || pad > octets) {
            layout_release(out);
            return -1;
        }
        octets -= pad;
    }
    out->b0 = (uint8_t)((b0 & 0xEF) | (out->block_len ? 0x10 : 0));
    out->csrc = pkt + 12;
    out->csrc_len = ext_start - 12;
    out->start = pos;
    out->octets = octets;
    return 0;
}

/* The state change of one rewritten packet (RtpRewriter.rewrite after validation). */
static void lane_advance(Lane *lane, const uint8_t *pkt, Py_ssize_t octets, uint8_t *hdr) {
    int64_t in_seq = be16(pkt + 2), in_ts = be32(pkt + 4), src = be32(pkt + 8);
    if (src != lane->src) {  /* _resync */
        if (lane->started) {
            int64_t last_seq = (lane->hi_seq + lane->seq_off) & 0xFFFF;
            int64_t last_ts = (lane->hi_ts + lane->ts_off) & 0xFFFFFFFF;
            lane->seq_off = (last_seq + 1 - in_seq) & 0xFFFF;
            int has = lane->has_delta;
            int64_t delta = lane->next_delta;
            if (!has && src != lane->cur) {
                has = 1;
                delta = lane->step;
            }
            if (has) lane->ts_off = (last_ts + delta - in_ts) & 0xFFFFFFFF;
        }
        lane->started = 1;
        lane->has_delta = 0;
        lane->next_delta = 0;
        lane->src = lane->cur = src;
        lane->hi_seq = in_seq;
        lane->hi_ts = in_ts;
    }
    int64_t ahead = (in_seq - lane->hi_seq) & 0xFFFF;
    if (0 < ahead && ahead < 0x8000) {
        lane->hi_seq = in_seq;
        lane->hi_ts = in_ts;
    }
    lane->packets++;
    lane->octets += (unsigned long long)octets;
    uint32_t seq = (uint32_t)((in_seq + lane->seq_off) & 0xFFFF);
    uint32_t ts = (uint32_t)((in_ts + lane->ts_off) & 0xFFFFFFFF);
    hdr[1] = (uint8_t)((pkt[1] & 0x80) | lane->payload_type);
    hdr[2] = (uint8_t)(seq >> 8);
    hdr[3] = (uint8_t)seq;
    hdr[4] = (uint8_t)(ts >> 24);
    hdr[5] = (uint8_t)(ts >> 16);
    hdr[6] = (uint8_t)(ts >> 8);
    hdr[7] = (uint8_t)ts;
    hdr[8] = (uint8_t)(lane->ssrc >> 24);
    hdr[9] = (uint8_t)(lane->ssrc >> 16);
    hdr[10] = (uint8_t)(lane->ssrc >> 8);
    hdr[11] = (uint8_t)lane->ssrc;
}

static Py_ssize_t layout_size(const Layout *l, Py_ssize_t n) {
    return 12 + l->csrc_len + l->block_len + (n - l->start) +
           (l->tcc_mode == 1 ? 8 : l->tcc_mode == 2 ? 4 : 0);
}

/* Everything after the 12-byte header, into out + 12. */
static void layout_write(Lane *lane, const Layout *l, const uint8_t *pkt, Py_ssize_t n,
                         uint8_t *out) {
    uint8_t *p = out + 12;
    if (l->csrc_len) {
        memcpy(p, l->csrc, (size_t)l->csrc_len);
        p += l->csrc_len;
    }
    if (l->plan) {
        const uint8_t *in = pkt + l->plan_at;
        const uint8_t *keep = (const uint8_t *)PyBytes_AS_STRING(lane->plan_keep);
        const uint8_t *cnst = (const uint8_t *)PyBytes_AS_STRING(lane->plan_const);
        Py_ssize_t pn = lane->plan_n, size = lane->plan_size;
        for (Py_ssize_t i = 0; i < size; i++)
            p[i] = (uint8_t)((i < pn ? (in[i] & keep[i]) : 0) | cnst[i]);
        p += size;
    } else if (l->block_len) {
        memcpy(p, l->block, (size_t)l->block_len);
        p += l->block_len;
    }
    if (l->tcc_mode) {
        if (l->tcc_mode == 1) {  /* a new block of one word */
            p[0] = 0xBE;
            p[1] = 0xDE;
            p[2] = 0;
            p[3] = 1;
            p += 4;
        } else {  /* one more word in the block just written */
            uint8_t *words = p - l->block_len + 2;
            unsigned w = ((unsigned)words[0] << 8 | words[1]) + 1;
            words[0] = (uint8_t)(w >> 8);
            words[1] = (uint8_t)w;
        }
        p[0] = lane->tcc->hdr;
        p[1] = (uint8_t)(l->tcc_seq >> 8);
        p[2] = (uint8_t)l->tcc_seq;
        p[3] = 0;
        p += 4;
    }
    memcpy(p, pkt + l->start, (size_t)(n - l->start));
}

/* Shift the VP8 PictureID and TL0PICIDX of an outgoing packet (simulcast.Vp8Rewriter.rewrite:
 * the payload descriptor of RFC 7741 §4.2, after the header, CSRCs and extensions). */
static void lane_vp8(const Lane *lane, uint8_t *out, Py_ssize_t n) {
    int pic_off = lane->vp8_pic_off, tl0_off = lane->vp8_tl0_off;
    if (!(pic_off | tl0_off) || n < 12) return;
    Py_ssize_t pos = 12 + ((out[0] & 0x0F) << 2);
    if (out[0] & 0x10) {
        if (pos + 4 > n) return;
        pos += 4 + (((Py_ssize_t)out[pos + 2] << 8 | out[pos + 3]) << 2);
    }
    if (pos >= n || !(out[pos] & 0x80)) return;
    pos++;
    if (pos >= n) return;
    uint8_t x = out[pos++];
    Py_ssize_t pic_at = -1, tl0_at = -1;
    int bits15 = 0;
    if (x & 0x80) {
        if (pos >= n) return;
        pic_at = pos;
        if (out[pos] & 0x80) {
            if (pos + 1 >= n) return;
            bits15 = 1;
            pos += 2;
        } else {
            pos += 1;
        }
    }
    if (x & 0x40) {
        if (pos >= n) return;
        tl0_at = pos++;
    }
    if ((x & 0x30) && pos >= n) return;
    if (pic_at >= 0 && pic_off) {
        if (bits15) {
            unsigned pic = ((unsigned)(out[pic_at] & 0x7F) << 8 | out[pic_at + 1]);
            pic = (pic + (unsigned)pic_off) & 0x7FFF;
            out[pic_at] = (uint8_t)(0x80 | (pic >> 8));
            out[pic_at + 1] = (uint8_t)pic;
        } else {
            out[pic_at] = (uint8_t)((out[pic_at] + (unsigned)pic_off) & 0x7F);
        }
    }
    if (tl0_at >= 0 && tl0_off) out[tl0_at] = (uint8_t)((out[tl0_at] + (unsigned)tl0_off) & 0xFF);
}

/* Rewrite one packet (Consumer.forward up to the send): validate, lay it out, advance the
 * state and fill the 12-byte header. Returns the output size, 0 when the payload type is
 * not forwarded, -1 when dropped as malformed, -2 on an exception. With a size > 0 the
 * caller writes it (`layout_write`) and must `layout_release(l)`. */
static Py_ssize_t lane_prepare(Lane *lane, PyObject *pkt_obj, const uint8_t *pkt,
                               Py_ssize_t n, Layout *l, uint8_t *hdr) {
    if (n < 2) return -1;
    uint8_t out_pt = lane->pt_map[pkt[1] & 0x7F];
    if (out_pt == 0xFF) return 0;
    lane->payload_type = out_pt;
    int r = lane_layout(lane, pkt_obj, pkt, n, l);
    if (r < 0) return r;
    lane_advance(lane, pkt, l->octets, hdr);
    Tcc *tcc = lane->tcc;
    if (tcc != NULL) {  /* TransportCc.extend: a one-byte element with the next number */
        if (l->block_len == 0) {
            l->tcc_mode = 1;
            l->b0 |= 0x10;
        } else {
            const uint8_t *first = l->plan ? (const uint8_t *)PyBytes_AS_STRING(lane->plan_const)
                                           : l->block;
            l->tcc_mode = first[0] == 0xBE && first[1] == 0xDE ? 2 : 0;
        }
        l->tcc_seq = (uint16_t)tcc->seq;
    }
    hdr[0] = l->b0;
    Py_ssize_t size = layout_size(l, n);
    if (l->tcc_mode) {  /* TransportCc.commit */
        tcc->seq = (l->tcc_seq + 1) & 0xFFFF;
        tcc_note(tcc, l->tcc_seq, (int32_t)size);
    }
    return size;
}

/* rewrite(packet) -> bytes | None: what the Python path would hand to send_rtp (None:
 * not forwarded or malformed). For tests and for Python code that needs the bytes. */
static PyObject *Lane_rewrite(Lane *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Layout l;
    uint8_t hdr[12];
    Py_ssize_t size = lane_prepare(self, arg, view.buf, view.len, &l, hdr);
    PyObject *result;
    if (size == -2) {
        result = NULL;
    } else if (size <= 0) {
        result = Py_NewRef(Py_None);
    } else {
        result = PyBytes_FromStringAndSize(NULL, size);
        if (result != NULL) {
            uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
            memcpy(out, hdr, 12);
            layout_write(self, &l, view.buf, view.len, out);
            lane_vp8(self, out, size);
        }
        layout_release(&l);
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *Lane_get_egress(Lane *self, void *closure) {
    return Py_NewRef((PyObject *)self->egress);
}

static PyMemberDef Lane_members[] = {
    {"packets", T_ULONGLONG, offsetof(Lane, packets), READONLY, "packets rewritten"},
    {"octets", T_ULONGLONG, offsetof(Lane, octets), READONLY, "payload octets rewritten"},
    {"vp8_pic_off", T_INT, offsetof(Lane, vp8_pic_off), 0,
     "added to the VP8 PictureID of every packet (7 or 15 bits, as the packet has it)"},
    {"vp8_tl0_off", T_INT, offsetof(Lane, vp8_tl0_off), 0, "added to the VP8 TL0PICIDX"},
    {NULL}};

static PyGetSetDef Lane_getset[] = {
    {"egress", (getter)Lane_get_egress, NULL, "where this lane's packets go", NULL},
    {NULL}};

static PyMethodDef Lane_methods[] = {
    {"dump", (PyCFunction)Lane_dump, METH_NOARGS, "the rewriter state (RtpRewriter._dump)"},
    {"load", (PyCFunction)Lane_load, METH_O, "take over a rewriter state (RtpRewriter._dump)"},
    {"rewrite", (PyCFunction)Lane_rewrite, METH_O,
     "rewrite(packet) -> bytes | None: the packet this lane would protect and send"},
    {NULL}};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Lane(egress, pt_map, extensions=None): one consumer's rewrite state",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Lane_init,
    .tp_dealloc = (destructor)Lane_dealloc,
    .tp_traverse = (traverseproc)Lane_traverse,
    .tp_clear = (inquiry)Lane_clear,
    .tp_methods = Lane_methods,
    .tp_members = Lane_members,
    .tp_getset = Lane_getset,
};

/* ------------------------------------------------------------------------------------ */
/* FanOut: one producer's lanes                                                         */

typedef struct {
    PyObject_HEAD
    PyObject *lanes;  /* tuple of Lane */
} FanOut;

static PyTypeObject FanOutType;

static int FanOut_traverse(FanOut *self, visitproc visit, void *arg) {
    Py_VISIT(self->lanes);
    return 0;
}

static int FanOut_clear(FanOut *self) {
    Py_CLEAR(self->lanes);
    return 0;
}

static void FanOut_dealloc(FanOut *self) {
    PyObject_GC_UnTrack(self);
    FanOut_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int set_lanes(FanOut *self, PyObject *lanes) {
    PyObject *t = PySequence_Tuple(lanes);
    if (t == NULL) return -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        if (!PyObject_TypeCheck(PyTuple_GET_ITEM(t, i), &LaneType)) {
            Py_DECREF(t);
            PyErr_SetString(PyExc_TypeError, "lanes must be Lane objects");
            return -1;
        }
    }
    Py_XSETREF(self->lanes, t);
    return 0;
}

static int FanOut_init(FanOut *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"lanes", NULL};
    PyObject *lanes = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O", kwlist, &lanes)) return -1;
    if (lanes == NULL) {
        Py_XSETREF(self->lanes, PyTuple_New(0));
        return self->lanes == NULL ? -1 : 0;
    }
    return set_lanes(self, lanes);
}

static PyObject *FanOut_get_lanes(FanOut *self, void *closure) {
    return Py_NewRef(self->lanes);
}

static int FanOut_set_lanes(FanOut *self, PyObject *value, void *closure) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete lanes");
        return -1;
    }
    return set_lanes(self, value);
}

static uint8_t g_bufs[MAX_BATCH][BUF_SIZE];
static struct mmsghdr g_msgs[MAX_BATCH];
static struct iovec g_iovs[MAX_BATCH];
static Egress *g_owner[MAX_BATCH];
static int g_fds[MAX_BATCH];

/* Send the k datagrams queued, one sendmmsg per run of the same socket. */
static void flush(int k) {
    int i = 0;
    while (i < k) {
        int fd = g_fds[i], end = i + 1;
        while (end < k && g_fds[end] == fd) end++;
        while (i < end) {
            int r = sendmmsg(fd, &g_msgs[i], (unsigned int)(end - i), MSG_DONTWAIT);
            if (r < 0) {
                if (errno == EINTR) continue;
                g_owner[i]->dropped++;  /* refused (full buffer…): dropped, never queued */
                i++;
                continue;
            }
            for (int j = i; j < i + r; j++) {
                g_owner[j]->packets++;
                g_owner[j]->octets += g_iovs[j].iov_len;
            }
            i += r;
            if (r == 0) {  /* cannot happen; never spin */
                g_owner[i]->dropped++;
                i++;
            }
        }
    }
}

/* forward(packet): rewrite, protect and send one publisher packet to every lane. */
static PyObject *FanOut_forward(FanOut *self, PyObject *arg) {
    if (g_busy) {
        PyErr_SetString(PyExc_RuntimeError, "FanOut.forward is not re-entrant");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *pkt = (const uint8_t *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *lanes = Py_NewRef(self->lanes);  /* a snapshot, as the Python loop keeps */
    Py_ssize_t count = PyTuple_GET_SIZE(lanes);
    PyObject *last_sock = NULL;
    int last_fd = -1;
    int k = 0;
    PyObject *result = Py_None;
    g_busy = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        Lane *lane = (Lane *)PyTuple_GET_ITEM(lanes, i);
        Egress *e = lane->egress;
        Layout l;
        uint8_t hdr[12];
        Py_ssize_t size = lane_prepare(lane, arg, pkt, n, &l, hdr);
        if (size == -2) {
            result = NULL;
            break;
        }
        if (size <= 0) continue;
        if (size > MAX_PACKET) {  /* SrtpSession.protect refuses it */
            layout_release(&l);
            e->dropped++;
            continue;
        }
        memcpy(g_bufs[k], hdr, 12);
        layout_write(lane, &l, pkt, n, g_bufs[k]);
        layout_release(&l);
        lane_vp8(lane, g_bufs[k], size);
        int len = (int)size;
        if (egress_protect(e, g_bufs[k], &len) < 0) continue;
        if (e->sock == NULL) {
            if (egress_call(e, g_bufs[k], len) < 0) {
                result = NULL;
                break;
            }
            continue;
        }
        if (e->sock != last_sock) {
            last_sock = e->sock;
            last_fd = sock_fd(e->sock);
        }
        if (last_fd < 0) {  /* closed socket */
            e->dropped++;
            continue;
        }
        g_iovs[k].iov_base = g_bufs[k];
        g_iovs[k].iov_len = (size_t)len;
        memset(&g_msgs[k].msg_hdr, 0, sizeof g_msgs[k].msg_hdr);
        g_msgs[k].msg_hdr.msg_iov = &g_iovs[k];
        g_msgs[k].msg_hdr.msg_iovlen = 1;
        if (e->addrlen) {
            g_msgs[k].msg_hdr.msg_name = &e->addr;
            g_msgs[k].msg_hdr.msg_namelen = e->addrlen;
        }
        g_owner[k] = e;
        g_fds[k] = last_fd;
        if (++k == MAX_BATCH) {
            flush(k);
            k = 0;
        }
    }
    flush(k);  /* what was queued goes out even if a later lane raised */
    g_busy = 0;
    Py_DECREF(lanes);
    PyBuffer_Release(&view);
    return result == NULL ? NULL : Py_NewRef(Py_None);
}

static PyGetSetDef FanOut_getset[] = {
    {"lanes", (getter)FanOut_get_lanes, (setter)FanOut_set_lanes, "the lanes (a tuple)", NULL},
    {NULL}};

static PyMethodDef FanOut_methods[] = {
    {"forward", (PyCFunction)FanOut_forward, METH_O,
     "rewrite, protect and send one publisher packet to every lane"},
    {NULL}};

static PyTypeObject FanOutType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.FanOut",
    .tp_basicsize = sizeof(FanOut),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FanOut(lanes=()): one producer's fan-out to its lanes",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FanOut_init,
    .tp_dealloc = (destructor)FanOut_dealloc,
    .tp_traverse = (traverseproc)FanOut_traverse,
    .tp_clear = (inquiry)FanOut_clear,
    .tp_methods = FanOut_methods,
    .tp_getset = FanOut_getset,
};

/* ------------------------------------------------------------------------------------ */
/* Route and Ingress: a publisher's packets taken from the receive batch to the fan-out     */
/*
 * What `DtlsSrtpTransport.rtp_received` → `Peer._on_rtp` → `Producer.forward` do for one
 * RTP packet of a plain (one SSRC, not simulcast) producer, in the same order, without
 * returning the packet to Python: the transport's counters (`Ingress.packets`/`octets`,
 * added by its Python properties), `LossTracker.update(seq, timestamp, arrival)` (the Python
 * method, called), the recording tap (`tap.feed`, called), `PacketHistory.put` (its two
 * lists), `Producer.octets`, the audio level (`speakers.level`, called, for audio with the
 * ssrc-audio-level extension), then the producer's `FanOut`. The producer's state is read
 * live (`tap`, `_fan`, `_slow`, `octets`, the history's lists), so Python stays the one
 * owner of it; a producer with consumers that have no lane (`_slow`) is left to Python.
 */

static double g_clock = 0.0;  /* tests: a frozen time.monotonic() (0: the real clock) */

/* time.monotonic(), computed as CPython computes it (float seconds of CLOCK_MONOTONIC) */
static double monotonic_seconds(void) {
    if (g_clock != 0.0) return g_clock;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long t = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (t % 1000000000LL == 0) return (double)(t / 1000000000LL);
    return (double)t / 1e9;
}

static PyObject *s_slow, *s_fan, *s_tap, *s_feed, *s_octets, *s_packets, *s_seqs, *s_update,
    *s_forward, *s_size, *s_audio_level_id, *s_router, *s_speakers, *s_publisher_sid, *s_level;

typedef struct {
    PyObject_HEAD
    PyObject *producer;  /* router.Producer */
    PyObject *tracker;   /* its stats.LossTracker, or NULL */
    PyObject *update;    /* the tracker's bound `update` */
    PyObject *history;   /* its rtp.PacketHistory */
    long long clock_rate;
    Py_ssize_t mask;
    unsigned long long packets;  /* packets this route forwarded */
} Route;

static PyTypeObject RouteType;

static int Route_traverse(Route *self, visitproc visit, void *arg) {
    Py_VISIT(self->producer);
    Py_VISIT(self->tracker);
    Py_VISIT(self->update);
    Py_VISIT(self->history);
    return 0;
}

static int Route_clear(Route *self) {
    Py_CLEAR(self->producer);
    Py_CLEAR(self->tracker);
    Py_CLEAR(self->update);
    Py_CLEAR(self->history);
    return 0;
}

static void Route_dealloc(Route *self) {
    PyObject_GC_UnTrack(self);
    Route_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Route_init(Route *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"producer", "tracker", "history", "clock_rate", NULL};
    PyObject *producer, *tracker, *history;
    long long clock_rate;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOL", kwlist, &producer, &tracker, &history,
                                     &clock_rate))
        return -1;
    if (clock_rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be positive");
        return -1;
    }
    PyObject *size = PyObject_GetAttr(history, s_size);
    if (size == NULL) return -1;
    Py_ssize_t n = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (n <= 0 || (n & (n - 1))) {
        PyErr_SetString(PyExc_ValueError, "history size must be a power of two");
        return -1;
    }
    PyObject *update = NULL;
    if (tracker != Py_None) {
        update = PyObject_GetAttr(tracker, s_update);
        if (update == NULL) return -1;
    }
    Route_clear(self);
    self->producer = Py_NewRef(producer);
    self->tracker = tracker == Py_None ? NULL : Py_NewRef(tracker);
    self->update = update;
    self->history = Py_NewRef(history);
    self->clock_rate = clock_rate;
    self->mask = n - 1;
    self->packets = 0;
    return 0;
}

static PyObject *Route_get_producer(Route *self, void *closure) {
    if (self->producer == NULL) Py_RETURN_NONE;
    return Py_NewRef(self->producer);
}

static PyMemberDef Route_members[] = {
    {"packets", T_ULONGLONG, offsetof(Route, packets), READONLY,
     "packets this route forwarded (without Python)"},
    {"clock_rate", T_LONGLONG, offsetof(Route, clock_rate), READONLY, "the RTP clock rate"},
    {NULL}};

static PyGetSetDef Route_getset[] = {
    {"producer", (getter)Route_get_producer, NULL, "the producer", NULL},
    {NULL}};

static PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.Route",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Route(producer, tracker, history, clock_rate): one publisher SSRC's packets "
              "forwarded from the receive batch",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Route_init,
    .tp_dealloc = (destructor)Route_dealloc,
    .tp_traverse = (traverseproc)Route_traverse,
    .tp_clear = (inquiry)Route_clear,
    .tp_members = Route_members,
    .tp_getset = Route_getset,
};

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    uint32_t *ssrcs;
    PyObject **routes;  /* Route, owned */
    unsigned long long packets, octets;
} Ingress;

static PyTypeObject IngressType;

static int Ingress_traverse(Ingress *self, visitproc visit, void *arg) {
    for (Py_ssize_t i = 0; i < self->n; i++) Py_VISIT(self->routes[i]);
    return 0;
}

static void ingress_drop(Ingress *self) {
    Py_ssize_t n = self->n;
    PyObject **routes = self->routes;
    uint32_t *ssrcs = self->ssrcs;
    self->n = 0;
    self->routes = NULL;
    self->ssrcs = NULL;
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(routes[i]);
    PyMem_Free(routes);
    PyMem_Free(ssrcs);
}

static int Ingress_clear(Ingress *self) {
    ingress_drop(self);
    return 0;
}

static void Ingress_dealloc(Ingress *self) {
    PyObject_GC_UnTrack(self);
    ingress_drop(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Ingress_init(Ingress *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist)) return -1;
    ingress_drop(self);
    self->packets = self->octets = 0;
    return 0;
}

/* set_routes({ssrc: Route}): the routes from now on (replacing all) */
static PyObject *Ingress_set_routes(Ingress *self, PyObject *mapping) {
    if (!PyDict_Check(mapping)) {
        PyErr_SetString(PyExc_TypeError, "routes must be a dict {ssrc: Route}");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(mapping), pos = 0, i = 0;
    uint32_t *ssrcs = PyMem_Malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    PyObject **routes = PyMem_Malloc(sizeof(PyObject *) * (size_t)(n ? n : 1));
    if (ssrcs == NULL || routes == NULL) {
        PyMem_Free(ssrcs);
        PyMem_Free(routes);
        return PyErr_NoMemory();
    }
    PyObject *key, *value;
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        unsigned long long ssrc = PyLong_Check(key) ? PyLong_AsUnsignedLongLong(key) : ~0ULL;
        if (ssrc > 0xFFFFFFFFULL || !PyObject_TypeCheck(value, &RouteType)) {
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_TypeError, "routes must be a dict {ssrc: Route}");
            }
            for (Py_ssize_t j = 0; j < i; j++) Py_DECREF(routes[j]);
            PyMem_Free(ssrcs);
            PyMem_Free(routes);
            return NULL;
        }
        ssrcs[i] = (uint32_t)ssrc;
        routes[i] = Py_NewRef(value);
        i++;
    }
    ingress_drop(self);
    self->ssrcs = ssrcs;
    self->routes = routes;
    self->n = i;
    Py_RETURN_NONE;
}

static PyObject *Ingress_get_routes(Ingress *self, void *closure) {
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        PyObject *k = PyLong_FromUnsignedLong(self->ssrcs[i]);
        if (k == NULL || PyDict_SetItem(d, k, self->routes[i]) < 0) {
            Py_XDECREF(k);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
    }
    return d;
}

static Route *ingress_find(Ingress *self, uint32_t ssrc) {
    for (Py_ssize_t i = 0; i < self->n; i++)
        if (self->ssrcs[i] == ssrc) return (Route *)self->routes[i];
    return NULL;
}


/* lst[i] = value (a new reference to value taken); -1 with an exception */
static int set_index(PyObject *lst, Py_ssize_t i, PyObject *value) {
    if (PyList_CheckExact(lst) && i < PyList_GET_SIZE(lst)) {
        PyList_SetItem(lst, i, Py_NewRef(value));  /* steals; releases the old item */
        return 0;
    }
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL) return -1;
    int rc = PyObject_SetItem(lst, index, value);
    Py_DECREF(index);
    return rc;
}

/* history.put(packet): `_packets[i] = packet; _seqs[i] = seq` (PacketHistory.put); its
 * lists are read each time (`clear()` replaces them) */
static int history_put(Route *r, PyObject *packet, long seq) {
    Py_ssize_t i = seq & r->mask;
    PyObject *packets = PyObject_GetAttr(r->history, s_packets);
    if (packets == NULL) return -1;
    int rc = set_index(packets, i, packet);
    Py_DECREF(packets);
    if (rc < 0) return -1;
    PyObject *seqs = PyObject_GetAttr(r->history, s_seqs);
    if (seqs == NULL) return -1;
    PyObject *s = PyLong_FromLong(seq);
    rc = s == NULL ? -1 : set_index(seqs, i, s);
    Py_XDECREF(s);
    Py_DECREF(seqs);
    return rc;
}

/* The next packet in order, as LossTracker.update does it (stats.py), on the tracker's own
 * attributes: 1 done; 0 anything else (first packet, gap, reordering, duplicate, numbers
 * past 2^62), left to the Python method, nothing written; -1 an exception. */
static PyObject *s_unwrapper, *s_highest, *s_received, *s_highest_seq, *s_jitter16,
    *s_transit;

static int get_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    if (!PyLong_CheckExact(v)) {
        Py_DECREF(v);
        return 0;
    }
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (*out == -1 && PyErr_Occurred()) return -1;
    return overflow || *out > (1LL << 62) || *out < -(1LL << 62) ? 0 : 1;
}

static int set_ll(PyObject *obj, PyObject *name, long long value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL) return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

static int loss_update_in_order(PyObject *tracker, long seq, unsigned long ts,
                                long long arrival) {
    PyObject *unwrapper = PyObject_GetAttr(tracker, s_unwrapper);
    if (unwrapper == NULL) return -1;
    long long h, received, highest, jitter16, last_transit;
    int rc = get_ll(unwrapper, s_highest, &h);  /* None (no packet yet): 0 */
    if (rc > 0) rc = get_ll(tracker, s_received, &received);
    if (rc > 0) rc = get_ll(tracker, s_highest_seq, &highest);
    if (rc > 0) rc = get_ll(tracker, s_jitter16, &jitter16);
    if (rc > 0) rc = get_ll(tracker, s_transit, &last_transit);
    if (rc <= 0) {
        Py_DECREF(unwrapper);
        return rc;
    }
    long long ext = h + (((seq - h + 0x8000) & 0xFFFF) - 0x8000);  /* SeqUnwrapper.unwrap */
    if (received < 1 || ext != highest + 1 || ext <= h) {
        Py_DECREF(unwrapper);
        return 0;
    }
    long long transit = arrival - (long long)ts;
    long long d = ((transit - last_transit + 0x80000000LL) & 0xFFFFFFFFLL) - 0x80000000LL;
    jitter16 += (d < 0 ? -d : d) - ((jitter16 + 8) >> 4);
    rc = set_ll(unwrapper, s_highest, ext);
    Py_DECREF(unwrapper);
    if (rc < 0 || set_ll(tracker, s_received, received + 1) < 0 ||
        set_ll(tracker, s_highest_seq, ext) < 0 || set_ll(tracker, s_jitter16, jitter16) < 0 ||
        set_ll(tracker, s_transit, transit) < 0)
        return -1;
    return 1;
}

/* LossTracker.update(seq, timestamp, arrival): the next packet in order in C, the rest by
 * the Python method (`update`, the tracker's bound method). 1: in C, 0: in Python, -1. */
static int loss_update(PyObject *tracker, PyObject *update, long seq, unsigned long ts,
                       long long arrival) {
    int fast = loss_update_in_order(tracker, seq, ts, arrival);
    if (fast != 0) return fast;
    PyObject *argv[3] = {PyLong_FromLong(seq), PyLong_FromUnsignedLong(ts),
                         PyLong_FromLongLong(arrival)};
    PyObject *res = NULL;
    if (argv[0] && argv[1] && argv[2]) res = PyObject_Vectorcall(update, argv, 3, NULL);
    Py_XDECREF(argv[0]);
    Py_XDECREF(argv[1]);
    Py_XDECREF(argv[2]);
    if (res == NULL) return -1;
    Py_DECREF(res);
    return 0;
}

/* loss_update(tracker, seq, timestamp, arrival) -> bool: what a route does for
 * LossTracker.update (True: the in-order case, done in C) */
static PyObject *py_loss_update(PyObject *module, PyObject *args) {
    PyObject *tracker;
    long seq;
    unsigned long ts;
    long long arrival;
    if (!PyArg_ParseTuple(args, "OlkL", &tracker, &seq, &ts, &arrival)) return NULL;
    if (seq < 0 || seq > 0xFFFF || ts > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_ValueError, "seq must be 16 bits, timestamp 32");
        return NULL;
    }
    PyObject *update = PyObject_GetAttr(tracker, s_update);
    if (update == NULL) return NULL;
    int rc = loss_update(tracker, update, seq, ts, arrival);
    Py_DECREF(update);
    if (rc < 0) return NULL;
    return PyBool_FromLong(rc);
}

/* The ssrc-audio-level element of an RTP packet (RFC 6464 in RFC 8285's one- or two-byte
 * form): its level (0 loudest … 127 silence) or -1 (no such element, or not well formed), as
 * `speakers.audio_level` reads it. */
static int audio_level_of(const uint8_t *p, int n, long ext_id) {
    if (n < 12) return -1;
    uint8_t b0 = p[0];
    if ((b0 & 0xD0) != 0x90 || ext_id <= 0) return -1;  /* version 2 with the X bit */
    int pos = 12 + ((b0 & 0x0F) << 2);
    if (pos + 4 > n) return -1;
    int profile = (p[pos] << 8) | p[pos + 1];
    int end = pos + 4 + (((p[pos + 2] << 8) | p[pos + 3]) << 2);
    if (b0 & 0x20) {  /* padding: its count must fit after the header */
        int pad = p[n - 1];
        if (pad == 0 || end + pad > n) return -1;
    } else if (end > n) {
        return -1;
    }
    pos += 4;
    if (profile == 0xBEDE) {  /* one-byte form */
        if (ext_id > 14) return -1;
        while (pos < end) {
            int h = p[pos];
            if (h < 0x10) {  /* id 0: one padding byte */
                pos++;
                continue;
            }
            if (h >= 0xF0) return -1;  /* id 15: stop parsing */
            if ((h >> 4) == ext_id) {
                if (pos + 2 + (h & 0x0F) > end) return -1;
                return p[pos + 1] & 0x7F;
            }
            pos += 2 + (h & 0x0F);
        }
        return -1;
    }
    if ((profile & 0xFFF0) == 0x1000) {  /* two-byte form */
        while (pos < end) {
            int id = p[pos];
            if (id == 0) {
                pos++;
                continue;
            }
            if (pos + 1 >= end) return -1;
            int size = p[pos + 1];
            if (id == ext_id) {
                if (size == 0 || pos + 2 + size > end) return -1;
                return p[pos + 2] & 0x7F;
            }
            pos += 2 + size;
        }
    }
    return -1;
}

/* audio_level(packet, ext_id) -> int | None: `audio_level_of` (tests: against
 * speakers.audio_level) */
static PyObject *py_audio_level(PyObject *module, PyObject *args) {
    Py_buffer buf;
    long ext_id;
    if (!PyArg_ParseTuple(args, "y*l", &buf, &ext_id)) return NULL;
    int level = buf.len > 0x7FFFFFFF ? -1 : audio_level_of(buf.buf, (int)buf.len, ext_id);
    PyBuffer_Release(&buf);
    if (level < 0) Py_RETURN_NONE;
    return PyLong_FromLong(level);
}

/* Producer.forward's audio level: `_router.speakers.level(publisher_sid, level)` when the
 * producer has an audio-level id and the packet carries one. 0 or -1 (an exception). */
static int feed_audio_level(PyObject *producer, const uint8_t *b, int len) {
    PyObject *lid = PyObject_GetAttr(producer, s_audio_level_id);
    if (lid == NULL) return -1;
    long ext_id = PyLong_AsLong(lid);
    Py_DECREF(lid);
    if (ext_id == -1 && PyErr_Occurred()) return -1;
    if (ext_id == 0) return 0;
    int level = audio_level_of(b, len, ext_id);
    if (level < 0) return 0;
    PyObject *router = PyObject_GetAttr(producer, s_router);
    if (router == NULL) return -1;
    int rc = 0;
    if (router != Py_None) {
        PyObject *speakers = PyObject_GetAttr(router, s_speakers);
        PyObject *sid = speakers == NULL ? NULL : PyObject_GetAttr(producer, s_publisher_sid);
        PyObject *value = sid == NULL ? NULL : PyLong_FromLong(level);
        PyObject *res = value == NULL
                            ? NULL
                            : PyObject_CallMethodObjArgs(speakers, s_level, sid, value, NULL);
        rc = res == NULL ? -1 : 0;
        Py_XDECREF(res);
        Py_XDECREF(value);
        Py_XDECREF(sid);
        Py_XDECREF(speakers);
    }
    Py_DECREF(router);
    return rc;
}

/* One unprotected RTP packet (`size` bytes as received) of route r: 0 forwarded, 1 left to
 * Python (nothing done), -1 an exception from Python code it called (set). */
static int route_packet(Ingress *in, Route *r, const uint8_t *b, int len, int size) {
    PyObject *producer = r->producer;
    if (producer == NULL) return 1;
    PyObject *slow = PyObject_GetAttr(producer, s_slow);
    if (slow == NULL) return -1;
    int has_slow = PyObject_IsTrue(slow);
    Py_DECREF(slow);
    if (has_slow != 0) return has_slow < 0 ? -1 : 1;  /* consumers without a lane: Python */
    PyObject *packet = PyBytes_FromStringAndSize((const char *)b, len);
    if (packet == NULL) return -1;
    Py_INCREF(producer);
    int rc = -1;
    long seq = be16(b + 2);
    /* DtlsSrtpTransport.rtp_received */
    in->packets++;
    in->octets += (unsigned long long)size;
    /* Peer._on_rtp: the receive statistics */
    if (r->update != NULL) {
        long long arrival = (long long)(monotonic_seconds() * (double)r->clock_rate);
        if (loss_update(r->tracker, r->update, seq, be32(b + 4), arrival) < 0) goto done;
    }
    /* Producer.forward: the recording tap, the history, the octets, the audio level, the
     * fan-out */
    PyObject *tap = PyObject_GetAttr(producer, s_tap);
    if (tap == NULL) goto done;
    if (tap != Py_None) {
        PyObject *res = PyObject_CallMethodOneArg(tap, s_feed, packet);
        if (res == NULL) {
            Py_DECREF(tap);
            goto done;
        }
        Py_DECREF(res);
    }
    Py_DECREF(tap);
    if (history_put(r, packet, seq) < 0) goto done;
    PyObject *octets = PyObject_GetAttr(producer, s_octets);
    if (octets == NULL) goto done;
    PyObject *n = PyLong_FromLong(len);
    PyObject *sum = n == NULL ? NULL : PyNumber_Add(octets, n);
    Py_DECREF(octets);
    Py_XDECREF(n);
    if (sum == NULL) goto done;
    int set = PyObject_SetAttr(producer, s_octets, sum);
    Py_DECREF(sum);
    if (set < 0) goto done;
    if (feed_audio_level(producer, b, len) < 0) goto done;
    PyObject *fan = PyObject_GetAttr(producer, s_fan);
    if (fan == NULL) goto done;
    if (fan != Py_None) {
        PyObject *res = Py_IS_TYPE(fan, &FanOutType) ? FanOut_forward((FanOut *)fan, packet)
                                                     : PyObject_CallMethodOneArg(fan, s_forward, packet);
        Py_DECREF(fan);
        if (res == NULL) goto done;
        Py_DECREF(res);
    } else {
        Py_DECREF(fan);
    }
    /* consumers without a lane that Python code called above added: as Producer.forward */
    slow = PyObject_GetAttr(producer, s_slow);
    if (slow == NULL) goto done;
    PyObject *seq_slow = PySequence_Fast(slow, "Producer._slow is not a sequence");
    Py_DECREF(slow);
    if (seq_slow == NULL) goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq_slow);
    if (count > 0) {
        PyObject *pt = PyLong_FromLong(b[1] & 0x7F);
        for (Py_ssize_t i = 0; pt != NULL && i < count; i++) {
            PyObject *res = PyObject_CallMethodObjArgs(PySequence_Fast_GET_ITEM(seq_slow, i),
                                                       s_forward, packet, pt, NULL);
            if (res == NULL) {
                Py_CLEAR(pt);
                break;
            }
            Py_DECREF(res);
        }
        if (pt == NULL) {
            Py_DECREF(seq_slow);
            goto done;
        }
        Py_DECREF(pt);
    }
    Py_DECREF(seq_slow);
    r->packets++;
    rc = 0;
done:
    Py_DECREF(producer);
    Py_DECREF(packet);
    return rc;
}

static PyMemberDef Ingress_members[] = {
    {"packets", T_ULONGLONG, offsetof(Ingress, packets), READONLY,
     "RTP packets the routes took (DtlsSrtpTransport.rtp_packets_received adds them)"},
    {"octets", T_ULONGLONG, offsetof(Ingress, octets), READONLY,
     "their SRTP size as received (DtlsSrtpTransport.rtp_bytes_received adds them)"},
    {NULL}};

static PyGetSetDef Ingress_getset[] = {
    {"routes", (getter)Ingress_get_routes, NULL, "the routes, {ssrc: Route} (a copy)", NULL},
    {NULL}};

static PyMethodDef Ingress_methods[] = {
    {"set_routes", (PyCFunction)Ingress_set_routes, METH_O,
     "set_routes({ssrc: Route}): the routes from now on"},
    {NULL}};

static PyTypeObject IngressType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "parlour.media._fastpath.Ingress",
    .tp_basicsize = sizeof(Ingress),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Ingress(): one transport's receive side: the routes `recv_batch` forwards by",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ingress_init,
    .tp_dealloc = (destructor)Ingress_dealloc,
    .tp_traverse = (traverseproc)Ingress_traverse,
    .tp_clear = (inquiry)Ingress_clear,
    .tp_methods = Ingress_methods,
    .tp_members = Ingress_members,
    .tp_getset = Ingress_getset,
};

static PyObject *set_clock(PyObject *module, PyObject *arg) {
    double v = arg == Py_None ? 0.0 : PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    g_clock = v;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------ */
/* recv_batch: recvmmsg, with SRTP unprotect of the RTP (a load generator's receive side)  */

#define RECV_MAX 64
#define RECV_SIZE 2048

static uint8_t r_bufs[RECV_MAX][RECV_SIZE];
static int r_busy = 0;
static struct mmsghdr r_msgs[RECV_MAX];
static struct iovec r_iovs[RECV_MAX];
static struct sockaddr_storage r_addrs[RECV_MAX];
static union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
} r_ctrl[RECV_MAX];

static PyObject *sockaddr_tuple(const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(sin->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(sin6->sin6_port),
                             (unsigned int)ntohl(sin6->sin6_flowinfo),
                             (unsigned int)sin6->sin6_scope_id);
    }
    return Py_NewRef(Py_None);
}

/* recv_batch(sock, count, ctx=0, ingress=None) -> list of (kind, data, ns, addr, size)
 *
 * Reads up to `count` datagrams that are waiting (never blocks). kind 1: an SRTP packet
 * unprotected with libsrtp context `ctx` (its address; 0: none) into plain RTP; kind -1:
 * SRTP that failed to unprotect (`data` as received); kind 0: anything else (STUN, DTLS,
 * SRTCP), as received. `ns`: the kernel's receive time (SO_TIMESTAMPNS, CLOCK_REALTIME
 * nanoseconds) or 0 if the socket does not report it. `addr`: the source address (None
 * for kind 1); `size`: the datagram's size as received.
 *
 * With an `ingress`, an RTP packet whose SSRC has a route there is forwarded in C
 * (`route_packet`) and not returned; an exception raised by Python code a route called is
 * returned in its place as kind 2 (`data`: the exception), and the batch goes on. */
static PyObject *recv_batch(PyObject *module, PyObject *args) {
    PyObject *sock;
    int count;
    unsigned long long ctx = 0;
    PyObject *ingress_arg = Py_None;
    if (!PyArg_ParseTuple(args, "Oi|KO", &sock, &count, &ctx, &ingress_arg)) return NULL;
    Ingress *ingress = NULL;
    if (ingress_arg != Py_None) {
        if (!PyObject_TypeCheck(ingress_arg, &IngressType)) {
            PyErr_SetString(PyExc_TypeError, "ingress must be an Ingress or None");
            return NULL;
        }
        ingress = (Ingress *)ingress_arg;
    }
    if (r_busy) {
        PyErr_SetString(PyExc_RuntimeError, "recv_batch is not re-entrant");
        return NULL;
    }
    if (count < 1) count = 1;
    if (count > RECV_MAX) count = RECV_MAX;
    if (ctx != 0 && g_unprotect == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no srtp_unprotect configured");
        return NULL;
    }
    int fd = sock_fd(sock);
    if (fd < 0) return PyList_New(0);
    for (int i = 0; i < count; i++) {
        r_iovs[i].iov_base = r_bufs[i];
        r_iovs[i].iov_len = RECV_SIZE;
        memset(&r_msgs[i].msg_hdr, 0, sizeof r_msgs[i].msg_hdr);
        r_msgs[i].msg_hdr.msg_iov = &r_iovs[i];
        r_msgs[i].msg_hdr.msg_iovlen = 1;
        r_msgs[i].msg_hdr.msg_name = &r_addrs[i];
        r_msgs[i].msg_hdr.msg_namelen = sizeof r_addrs[i];
        r_msgs[i].msg_hdr.msg_control = r_ctrl[i].buf;
        r_msgs[i].msg_hdr.msg_controllen = sizeof r_ctrl[i].buf;
    }
    int got;
    do {
        got = recvmmsg(fd, r_msgs, (unsigned int)count, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    PyObject *list = PyList_New(0);
    if (list == NULL || got <= 0) return list;  /* EAGAIN and errors: nothing to read */
    r_busy = 1;  /* routes call Python code, which must not read into these buffers */
    if (ingress != NULL) Py_INCREF(ingress);
    for (int i = 0; i < got; i++) {
        int len = (int)r_msgs[i].msg_len;
        int size = len;
        long long ns = 0;
        struct msghdr *h = &r_msgs[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
            }
        }
        int kind = 0;
        uint8_t *b = r_bufs[i];
        if (ctx != 0 && len >= 12 && b[0] > 127 && b[0] < 192 &&
            !((b[1] & 0x7F) > 63 && (b[1] & 0x7F) < 96)) {
            /* libsrtp works in place and may leave a refused packet half-decrypted: work on
             * a copy, so that what failed is handed on as it was received */
            static uint8_t plain[RECV_SIZE];
            int n = len;
            memcpy(plain, b, (size_t)len);
            if (g_unprotect((void *)(uintptr_t)ctx, plain, &n) == 0) {
                kind = 1;
                b = plain;
                len = n;
            } else {
                kind = -1;
            }
        }
        PyObject *item = NULL;
        if (kind == 1 && ingress != NULL && ingress->n > 0) {
            Route *route = ingress_find(ingress, be32(b + 8));
            if (route != NULL) {
                Py_INCREF(route);  /* Python code it calls may change the routes */
                int rc = route_packet(ingress, route, b, len, size);
                Py_DECREF(route);
                if (rc == 0) continue;
                if (rc < 0) {
                    /* as `_read_path` does with what `on_rtp` raises: Exceptions are
                     * handed back (kind 2), anything else propagates */
                    if (!PyErr_ExceptionMatches(PyExc_Exception)) goto failed;
                    PyObject *type, *value, *tb;
                    PyErr_Fetch(&type, &value, &tb);
                    PyErr_NormalizeException(&type, &value, &tb);
                    if (tb != NULL && value != NULL) PyException_SetTraceback(value, tb);
                    Py_XDECREF(type);
                    Py_XDECREF(tb);
                    if (value == NULL) goto failed;
                    item = Py_BuildValue("(iNLOi)", 2, value, ns, Py_None, size);
                    if (item == NULL) goto failed;
                }
            }
        }
        if (item == NULL) {
            PyObject *addr = kind == 1 ? Py_NewRef(Py_None) : sockaddr_tuple(&r_addrs[i]);
            item = addr == NULL ? NULL
                                : Py_BuildValue("(iy#LNi)", kind, (const char *)b,
                                                (Py_ssize_t)len, ns, addr, size);
        }
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto failed;
        }
        Py_DECREF(item);
    }
    r_busy = 0;
    Py_XDECREF(ingress);
    return list;
failed:
    r_busy = 0;
    Py_XDECREF(ingress);
    Py_DECREF(list);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */

static PyObject *configure(PyObject *module, PyObject *args) {
    unsigned long long protect, unprotect = 0;
    PyObject *rtp_error;
    if (!PyArg_ParseTuple(args, "KO|K", &protect, &rtp_error, &unprotect)) return NULL;
    if (protect == 0 || !PyExceptionClass_Check(rtp_error)) {
        PyErr_SetString(PyExc_ValueError, "configure(srtp_protect address, RtpError class)");
        return NULL;
    }
    g_protect = (srtp_protect_fn)(uintptr_t)protect;
    g_unprotect = (srtp_protect_fn)(uintptr_t)unprotect;
    Py_INCREF(rtp_error);
    Py_XSETREF(g_rtp_error, rtp_error);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(srtp_protect, rtp_error, srtp_unprotect=0): libsrtp's srtp_protect and "
     "srtp_unprotect (addresses) and the exception class that means a malformed packet"},
    {"recv_batch", recv_batch, METH_VARARGS,
     "recv_batch(sock, count, ctx=0, ingress=None) -> [(kind, data, ns, addr, size)]: "
     "recvmmsg, SRTP unprotected with context `ctx` (kind 1; -1: failed; 0: not SRTP RTP); "
     "RTP with a route in `ingress` is forwarded in C (kind 2: what a route raised)"},
    {"loss_update", py_loss_update, METH_VARARGS,
     "loss_update(tracker, seq, timestamp, arrival) -> bool: LossTracker.update as routes "
     "do it (True: the next packet in order, in C; False: by the Python method)"},
    {"audio_level", py_audio_level, METH_VARARGS,
     "audio_level(packet, ext_id) -> int | None: the ssrc-audio-level a route reads "
     "(speakers.audio_level's level)"},
    {"set_clock", set_clock, METH_O,
     "set_clock(seconds | None): tests only: the time.monotonic() routes use, frozen (None: "
     "the real clock)"},
    {NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The SFU's per-packet forwarding loop in C.", -1,
    module_methods};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (PyType_Ready(&EgressType) < 0 || PyType_Ready(&LaneType) < 0 ||
        PyType_Ready(&TccType) < 0 ||
        PyType_Ready(&FanOutType) < 0 || PyType_Ready(&RouteType) < 0 ||
        PyType_Ready(&IngressType) < 0)
        return NULL;
    s_fileno = PyUnicode_InternFromString("fileno");
    (void)s_rewrite;
    (void)s_byte_plan;
    s_rewrite = PyUnicode_InternFromString("_rewrite");
    s_byte_plan = PyUnicode_InternFromString("byte_plan");
    if (!s_fileno || !s_rewrite || !s_byte_plan) return NULL;
    s_slow = PyUnicode_InternFromString("_slow");
    s_fan = PyUnicode_InternFromString("_fan");
    s_tap = PyUnicode_InternFromString("tap");
    s_feed = PyUnicode_InternFromString("feed");
    s_octets = PyUnicode_InternFromString("octets");
    s_packets = PyUnicode_InternFromString("_packets");
    s_seqs = PyUnicode_InternFromString("_seqs");
    s_update = PyUnicode_InternFromString("update");
    s_forward = PyUnicode_InternFromString("forward");
    s_size = PyUnicode_InternFromString("size");
    s_audio_level_id = PyUnicode_InternFromString("audio_level_id");
    s_router = PyUnicode_InternFromString("_router");
    s_speakers = PyUnicode_InternFromString("speakers");
    s_publisher_sid = PyUnicode_InternFromString("publisher_sid");
    s_level = PyUnicode_InternFromString("level");
    if (!s_audio_level_id || !s_router || !s_speakers || !s_publisher_sid || !s_level)
        return NULL;
    s_unwrapper = PyUnicode_InternFromString("_unwrapper");
    s_highest = PyUnicode_InternFromString("_highest");
    s_received = PyUnicode_InternFromString("received");
    s_highest_seq = PyUnicode_InternFromString("highest_seq");
    s_jitter16 = PyUnicode_InternFromString("_jitter16");
    s_transit = PyUnicode_InternFromString("_transit");
    if (!s_unwrapper || !s_highest || !s_received || !s_highest_seq || !s_jitter16 ||
        !s_transit)
        return NULL;
    if (!s_slow || !s_fan || !s_tap || !s_feed || !s_octets || !s_packets || !s_seqs ||
        !s_update || !s_forward || !s_size)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "MAX_PACKET", MAX_PACKET) < 0 ||
        PyModule_AddObjectRef(m, "Egress", (PyObject *)&EgressType) < 0 ||
        PyModule_AddObjectRef(m, "Lane", (PyObject *)&LaneType) < 0 ||
        PyModule_AddObjectRef(m, "Tcc", (PyObject *)&TccType) < 0 ||
        PyModule_AddObjectRef(m, "FanOut", (PyObject *)&FanOutType) < 0 ||
        PyModule_AddObjectRef(m, "Route", (PyObject *)&RouteType) < 0 ||
        PyModule_AddObjectRef(m, "Ingress", (PyObject *)&IngressType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
