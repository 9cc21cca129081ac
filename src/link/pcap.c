/* src/link/pcap: classic pcap files (see pcap.h; format: draft-ietf-opsawg-pcap).
 *
 * Call flow:
 *   writer: pcap_writer_open / pcap_writer_from_file -> write_file_header
 *           pcap_writer_write -> 16-byte record header + packet
 *           pcap_writer_close -> fflush (+ fclose when owned)
 *   reader: pcap_reader_open -> read the 24-byte header: magic (byte order,
 *           usec/nsec), link type check
 *           pcap_reader_next -> read record header, bound incl_len, read the record,
 *           strip_link() per link type -> IPv4 packet, or skip the record
 *
 * The writer always writes little-endian with microsecond timestamps, so the same
 * run gives the same file bytes on every machine. The reader never trusts a length
 * from the file: records above PCAP_MAX_RECORD are rejected as corrupt, and a
 * record is parsed only from the bytes actually read.
 */
#include "link/pcap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

#define PCAP_MAGIC_USEC 0xa1b2c3d4u
#define PCAP_MAGIC_NSEC 0xa1b23c4du
#define PCAP_MAGIC_MODIFIED 0xa1b2cd34u  /* Kuznetzov's patched libpcap: other record layout */
#define PCAPNG_MAGIC 0x0a0d0d0au         /* section header block type */
#define PCAP_SNAPLEN 65535u
/* Largest record accepted (libpcap's own limit for non-D-Bus link types). */
#define PCAP_MAX_RECORD 262144u

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define BSD_AF_INET 2
/* DLT_NULL's AF_INET6 is the capturing system's: 10 (Linux), 24 (NetBSD,
 * OpenBSD), 28 (FreeBSD), 30 (macOS); libpcap's readers accept all four. */
static bool bsd_af_inet6(uint32_t v) { return v == 10 || v == 24 || v == 28 || v == 30; }

/* ---- writer ---- */

struct pcap_writer {
  FILE *f;
  int owned;
};

static void put_le32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_le16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static int io_errno(void) { return errno ? errno : EIO; }

static int write_file_header(FILE *f)
{
  uint8_t h[24];
  put_le32(h, PCAP_MAGIC_USEC);
  put_le16(h + 4, 2);   /* version 2.4 */
  put_le16(h + 6, 4);
  put_le32(h + 8, 0);   /* thiszone: timestamps are UTC (or virtual time) */
  put_le32(h + 12, 0);  /* sigfigs */
  put_le32(h + 16, PCAP_SNAPLEN);
  put_le32(h + 20, PCAP_LINKTYPE_RAW);
  errno = 0;
  return fwrite(h, sizeof h, 1, f) == 1 ? 0 : -io_errno();
}

struct pcap_writer *pcap_writer_from_file(FILE *f, int owned)
{
  if (!f) {
    errno = EINVAL;
    return NULL;
  }
  struct pcap_writer *w = malloc(sizeof *w);
  if (!w)
    return NULL;
  int rc = write_file_header(f);
  if (rc != 0) {
    free(w);
    errno = -rc;
    return NULL;
  }
  w->f = f;
  w->owned = owned;
  return w;
}

struct pcap_writer *pcap_writer_open(const char *path)
{
  FILE *f = fopen(path, "wb");
  if (!f)
    return NULL;
  struct pcap_writer *w = pcap_writer_from_file(f, 1);
  if (!w) {
    int e = errno;
    fclose(f);
    errno = e;
  }
  return w;
}

int pcap_writer_write(struct pcap_writer *w, uint64_t ts_us, const uint8_t *pkt, size_t len)
{
  if (!w || (!pkt && len > 0))
    return -EINVAL;
  /* Packets above the snap length are truncated; orig_len keeps the real size. */
  size_t incl = len > PCAP_SNAPLEN ? PCAP_SNAPLEN : len;
  uint8_t h[16];
  put_le32(h, (uint32_t)(ts_us / 1000000u));  /* wraps in 2106, like every pcap */
  put_le32(h + 4, (uint32_t)(ts_us % 1000000u));
  put_le32(h + 8, (uint32_t)incl);
  put_le32(h + 12, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
  errno = 0;
  if (fwrite(h, sizeof h, 1, w->f) != 1)
    return -io_errno();
  if (incl > 0 && fwrite(pkt, incl, 1, w->f) != 1)
    return -io_errno();
  return 0;
}

int pcap_writer_close(struct pcap_writer *w)
{
  if (!w)
    return 0;
  int rc = 0;
  errno = 0;
  if (fflush(w->f) != 0 || ferror(w->f))
    rc = -io_errno();
  if (w->owned) {
    errno = 0;
    if (fclose(w->f) != 0 && rc == 0)
      rc = -io_errno();
  }
  free(w);
  return rc;
}

/* ---- reader ---- */

#define PCAPNG_MAX_IFS 64
#define PCAPNG_BOM 0x1A2B3C4Du

struct pcap_reader {
  FILE *f;
  bool swapped;      /* file byte order differs from ours */
  bool nsec;         /* timestamps in nanoseconds */
  int linktype;
  bool want6;        /* pcap_reader_want_ipv6: yield IPv6 packets too */
  uint8_t *buf;
  size_t cap;
  uint64_t records;  /* records read, for error messages */
  /* pcapng (what tshark and Wireshark write by default): per-interface link
   * types and timestamp units. */
  bool ng;
  uint32_t nifs;
  int if_linktype[PCAPNG_MAX_IFS];
  uint64_t if_units[PCAPNG_MAX_IFS];   /* timestamp units per second */
};

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
  if (!err || !errcap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errcap, fmt, ap);
  va_end(ap);
}

static uint32_t get_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_be32(const uint8_t *p)
{
  return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* A 32-bit field of the file header or a record header, in the file's byte order
 * (the order the magic number was written in). */
static uint32_t get_file32(const struct pcap_reader *r, const uint8_t *p)
{
  return r->swapped ? get_be32(p) : get_le32(p);
}

static uint32_t u32min_(uint32_t a, uint32_t b) { return a < b ? a : b; }

static bool supported_linktype(int lt)
{
  return lt == PCAP_LINKTYPE_NULL || lt == PCAP_LINKTYPE_ETHERNET || lt == PCAP_LINKTYPE_RAW ||
         lt == PCAP_LINKTYPE_LINUX_SLL || lt == PCAP_LINKTYPE_IPV4 ||
         lt == PCAP_LINKTYPE_LINUX_SLL2 || lt == PCAP_LINKTYPE_IPV6;
}

struct pcap_reader *pcap_reader_open(const char *path, char *err, size_t errcap)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    set_err(err, errcap, "%s: %s", path, strerror(errno));
    return NULL;
  }
  uint8_t h[24];
  size_t got = fread(h, 1, sizeof h, f);
  if (got < 4) {
    set_err(err, errcap, "%s: not a pcap file (%zu bytes)", path, got);
    goto fail;
  }
  /* "swapped" here means "big-endian file": fields are decoded explicitly in the
   * file's order, so the host's byte order never matters. */
  struct pcap_reader tmp = {.f = f};
  uint32_t magic = get_le32(h);
  uint32_t magic_be = get_be32(h);
  if (magic == PCAP_MAGIC_USEC || magic == PCAP_MAGIC_NSEC) {
    tmp.nsec = magic == PCAP_MAGIC_NSEC;
  } else if (magic_be == PCAP_MAGIC_USEC || magic_be == PCAP_MAGIC_NSEC) {
    tmp.swapped = true;
    tmp.nsec = magic_be == PCAP_MAGIC_NSEC;
  } else if (magic == PCAPNG_MAGIC) {
    /* Section Header Block: type, length, byte-order magic, version, section
     * length (24 bytes), then options and the trailing length. */
    if (got < sizeof h) {
      set_err(err, errcap, "%s: truncated pcapng section header", path);
      goto fail;
    }
    if (get_le32(h + 8) == PCAPNG_BOM) tmp.swapped = false;
    else if (get_be32(h + 8) == PCAPNG_BOM) tmp.swapped = true;
    else {
      set_err(err, errcap, "%s: pcapng section header with a bad byte-order magic", path);
      goto fail;
    }
    uint32_t blen = get_file32(&tmp, h + 4);
    if (blen < 28 || blen % 4 || blen > PCAP_MAX_RECORD || fseek(f, (long)blen - 24, SEEK_CUR) != 0) {
      set_err(err, errcap, "%s: corrupt pcapng section header (length %u)", path, (unsigned)blen);
      goto fail;
    }
    tmp.ng = true;
    tmp.linktype = -1;   /* known from the first interface description */
    struct pcap_reader *r = malloc(sizeof *r);
    if (!r) {
      set_err(err, errcap, "%s: out of memory", path);
      goto fail;
    }
    *r = tmp;
    return r;
  } else if (magic == PCAP_MAGIC_MODIFIED || magic_be == PCAP_MAGIC_MODIFIED) {
    set_err(err, errcap, "%s: modified (Kuznetzov) pcap format is not supported", path);
    goto fail;
  } else {
    set_err(err, errcap, "%s: not a pcap file (magic 0x%08x)", path, (unsigned)magic_be);
    goto fail;
  }
  if (got < sizeof h) {
    set_err(err, errcap, "%s: truncated pcap file header (%zu of 24 bytes)", path, got);
    goto fail;
  }
  uint16_t major = tmp.swapped ? get_be16(h + 4) : (uint16_t)(h[4] | h[5] << 8);
  if (major != 2) {
    set_err(err, errcap, "%s: unsupported pcap version %u", path, (unsigned)major);
    goto fail;
  }
  /* The upper bits of the link-type field carry FCS information; the type is the
   * low 16 bits. An Ethernet FCS is excluded below by trimming to the IPv4 length. */
  tmp.linktype = (int)(get_file32(&tmp, h + 20) & 0xffffu);
  if (!supported_linktype(tmp.linktype)) {
    set_err(err, errcap, "%s: unsupported link type %d (supported: 0 NULL, 1 Ethernet, "
            "101 RAW, 113 SLL, 228 IPv4, 229 IPv6, 276 SLL2)", path, tmp.linktype);
    goto fail;
  }
  struct pcap_reader *r = malloc(sizeof *r);
  if (!r) {
    set_err(err, errcap, "%s: out of memory", path);
    goto fail;
  }
  *r = tmp;
  return r;
fail:
  fclose(f);
  return NULL;
}

int pcap_reader_linktype(const struct pcap_reader *r) { return r->linktype; }

void pcap_reader_close(struct pcap_reader *r)
{
  if (!r)
    return;
  fclose(r->f);
  free(r->buf);
  free(r);
}

/* Trims link padding (Ethernet pads to 60 bytes; a trailing FCS) to the IPv4 total
 * length, using the wire layer; a packet that does not decode is left whole so the
 * stack sees and counts it. */
static size_t trim_to_ipv4(const uint8_t *pkt, size_t len)
{
  struct ipv4_hdr ip;
  const uint8_t *payload;
  size_t plen;
  if (ipv4_decode(pkt, len, &ip, &payload, &plen) != WIRE_OK)
    return len;
  return (size_t)(payload - pkt) + plen;
}

/* As trim_to_ipv4 for IPv6: the fixed header's Payload Length says where the
 * datagram ends (a jumbogram's 0 and a short record are left whole). */
static size_t trim_to_ipv6(const uint8_t *pkt, size_t len)
{
  if (len < 40 || (pkt[0] >> 4) != 6)
    return len;
  size_t want = 40 + get_be16(pkt + 4);
  return want > 40 && want < len ? want : len;
}

/* The IPv4 packet inside a record: 1 with *off and *len set, 0 when the record carries
 * something else (ARP, IPv6 unless want6, ...), -1 when shorter than its link header.
 * The link headers are not IP bytes, so reading them here does not bypass src/wire. */
static int strip_link(const struct pcap_reader *r, const uint8_t *p, size_t n,
                      size_t *off, size_t *len, char *err, size_t errcap)
{
  size_t hdr;
  uint16_t proto;
  switch (r->linktype) {
  case PCAP_LINKTYPE_RAW:
  case PCAP_LINKTYPE_IPV4:
    /* RAW may also carry IPv6: the version nibble tells them apart (no link header). */
    if (n == 0 || (r->linktype == PCAP_LINKTYPE_RAW && (p[0] >> 4) != 4 &&
                   !(r->want6 && (p[0] >> 4) == 6)))
      return 0;
    *off = 0;
    *len = (p[0] >> 4) == 6 ? trim_to_ipv6(p, n) : n;
    return 1;
  case PCAP_LINKTYPE_IPV6:
    if (n == 0 || !r->want6 || (p[0] >> 4) != 6)
      return 0;
    *off = 0;
    *len = trim_to_ipv6(p, n);
    return 1;
  case PCAP_LINKTYPE_ETHERNET:
    if (n < 14)
      goto short_hdr;
    hdr = 14;
    proto = get_be16(p + 12);
    /* 802.1Q / 802.1ad tags (up to two, QinQ): 4 bytes each before the real type. */
    for (int tags = 0; tags < 2 && (proto == ETHERTYPE_VLAN || proto == ETHERTYPE_QINQ); tags++) {
      if (n < hdr + 4)
        goto short_hdr;
      proto = get_be16(p + hdr + 2);
      hdr += 4;
    }
    break;
  case PCAP_LINKTYPE_LINUX_SLL:
    /* packet type, ARPHRD, address length, 8 address bytes, protocol */
    if (n < 16)
      goto short_hdr;
    hdr = 16;
    proto = get_be16(p + 14);
    break;
  case PCAP_LINKTYPE_LINUX_SLL2:
    /* protocol, reserved, ifindex, ARPHRD, packet type, address length, 8 address bytes */
    if (n < 20)
      goto short_hdr;
    hdr = 20;
    proto = get_be16(p);
    break;
  case PCAP_LINKTYPE_NULL: {
    /* The family is in the byte order of the capturing host, which need not be the
     * file's (libpcap accepts both), so AF_INET (2) is checked both ways. */
    if (n < 4)
      goto short_hdr;
    hdr = 4;
    bool inet = get_le32(p) == BSD_AF_INET || get_be32(p) == BSD_AF_INET;
    bool inet6 = bsd_af_inet6(get_le32(p)) || bsd_af_inet6(get_be32(p));
    proto = inet ? ETHERTYPE_IPV4 : inet6 ? ETHERTYPE_IPV6 : 0;
    break;
  }
  default:
    return 0;
  }
  if (n == hdr)
    return 0;
  if (proto == ETHERTYPE_IPV6 && r->want6 && (p[hdr] >> 4) == 6) {
    *off = hdr;
    *len = trim_to_ipv6(p + hdr, n - hdr);
    return 1;
  }
  if (proto != ETHERTYPE_IPV4)
    return 0;
  *off = hdr;
  *len = trim_to_ipv4(p + hdr, n - hdr);
  return 1;
short_hdr:
  set_err(err, errcap, "record %llu: %zu bytes, shorter than its link-layer header",
          (unsigned long long)r->records, n);
  return -1;
}

/* Reads one pcapng block body into r->buf. Returns its type, 0 at end, -1 on error. */
static long ng_block(struct pcap_reader *r, uint32_t *body_len, char *err, size_t errcap)
{
  uint8_t h[8];
  size_t got = fread(h, 1, sizeof h, r->f);
  if (got == 0 && feof(r->f)) return 0;
  r->records++;
  if (got < sizeof h) {
    set_err(err, errcap, "block %llu: truncated block header", (unsigned long long)r->records);
    return -1;
  }
  uint32_t type = get_file32(r, h), blen = get_file32(r, h + 4);
  if (blen < 12 || blen % 4 || blen > PCAP_MAX_RECORD) {
    set_err(err, errcap, "block %llu: bad length %u (corrupt file)", (unsigned long long)r->records,
            (unsigned)blen);
    return -1;
  }
  uint32_t n = blen - 8;   /* body and the trailing length */
  if (n > r->cap) {
    uint8_t *b = realloc(r->buf, n);
    if (!b) {
      set_err(err, errcap, "block %llu: out of memory", (unsigned long long)r->records);
      return -1;
    }
    r->buf = b;
    r->cap = n;
  }
  if (fread(r->buf, 1, n, r->f) < n) {
    set_err(err, errcap, "block %llu: truncated", (unsigned long long)r->records);
    return -1;
  }
  *body_len = n - 4;
  return (long)type;
}

/* if_tsresol (RFC draft pcapng §4.2): 10^-v seconds, or 2^-(v&0x7f) with the top bit. */
static uint64_t ng_units(const struct pcap_reader *r, const uint8_t *opt, uint32_t n)
{
  uint32_t off = 0;
  while (off + 4 <= n) {
    uint16_t code = (uint16_t)(r->swapped ? (opt[off] << 8 | opt[off + 1]) : (opt[off] | opt[off + 1] << 8));
    uint16_t olen = (uint16_t)(r->swapped ? (opt[off + 2] << 8 | opt[off + 3]) : (opt[off + 2] | opt[off + 3] << 8));
    if (code == 0) break;
    if (code == 9 && olen >= 1 && off + 5 <= n) {
      uint8_t v = opt[off + 4];
      if (v & 0x80) return (v & 0x7f) < 63 ? 1ull << (v & 0x7f) : 1000000;
      uint64_t u = 1;
      for (uint8_t i = 0; i < v && i < 19; i++) u *= 10;
      return u;
    }
    off += 4 + (((uint32_t)olen + 3u) & ~3u);
  }
  return 1000000;
}

static int ng_next(struct pcap_reader *r, uint64_t *ts_us, const uint8_t **pkt, size_t *len,
                   char *err, size_t errcap)
{
  for (;;) {
    uint32_t n;
    long type = ng_block(r, &n, err, errcap);
    if (type <= 0) return (int)type;
    const uint8_t *b = r->buf;
    if (type == 1) {                       /* Interface Description Block */
      if (n < 8) continue;
      if (r->nifs < PCAPNG_MAX_IFS) {
        int lt = (int)(r->swapped ? get_be16(b) : (uint16_t)(b[0] | b[1] << 8));
        r->if_linktype[r->nifs] = lt;
        r->if_units[r->nifs] = ng_units(r, b + 8, n - 8);
        if (r->linktype < 0) r->linktype = lt;
        r->nifs++;
      }
      continue;
    }
    uint32_t ifc = 0, caplen;
    uint64_t ts = 0;
    const uint8_t *data;
    if (type == 6) {                       /* Enhanced Packet Block */
      if (n < 20) continue;
      ifc = get_file32(r, b);
      ts = (uint64_t)get_file32(r, b + 4) << 32 | get_file32(r, b + 8);
      caplen = get_file32(r, b + 12);
      data = b + 20;
      if (caplen > n - 20) {
        set_err(err, errcap, "block %llu: packet longer than its block", (unsigned long long)r->records);
        return -1;
      }
    } else if (type == 3) {                /* Simple Packet Block */
      if (n < 4) continue;
      caplen = u32min_(get_file32(r, b), n - 4);
      data = b + 4;
    } else {
      continue;                            /* statistics, name resolution, ... */
    }
    if (ifc >= r->nifs || !supported_linktype(r->if_linktype[ifc])) continue;
    r->linktype = r->if_linktype[ifc];
    size_t off, m;
    int rc = strip_link(r, data, caplen, &off, &m, err, errcap);
    if (rc < 0) return -1;
    if (rc == 0) continue;
    uint64_t units = r->if_units[ifc];
    *ts_us = units == 1000000 ? ts : units > 1000000 ? ts / (units / 1000000) : ts * (1000000 / units);
    *pkt = data + off;
    *len = m;
    return 1;
  }
}

void pcap_reader_want_ipv6(struct pcap_reader *r, bool on) { r->want6 = on; }

int pcap_reader_next(struct pcap_reader *r, uint64_t *ts_us, const uint8_t **pkt,
                     size_t *len, char *err, size_t errcap)
{
  if (r->ng) return ng_next(r, ts_us, pkt, len, err, errcap);
  for (;;) {
    uint8_t h[16];
    size_t got = fread(h, 1, sizeof h, r->f);
    if (got == 0 && feof(r->f))
      return 0;
    r->records++;
    if (got < sizeof h) {
      if (ferror(r->f))
        set_err(err, errcap, "record %llu: read error: %s", (unsigned long long)r->records,
                strerror(errno));
      else
        set_err(err, errcap, "record %llu: truncated record header (%zu of 16 bytes)",
                (unsigned long long)r->records, got);
      return -1;
    }
    uint32_t sec = get_file32(r, h), frac = get_file32(r, h + 4);
    uint32_t incl = get_file32(r, h + 8);
    if (incl > PCAP_MAX_RECORD) {
      set_err(err, errcap, "record %llu: length %u exceeds %u (corrupt file)",
              (unsigned long long)r->records, (unsigned)incl, PCAP_MAX_RECORD);
      return -1;
    }
    if (incl > r->cap) {
      uint8_t *b = realloc(r->buf, incl);
      if (!b) {
        set_err(err, errcap, "record %llu: out of memory", (unsigned long long)r->records);
        return -1;
      }
      r->buf = b;
      r->cap = incl;
    }
    got = incl ? fread(r->buf, 1, incl, r->f) : 0;
    if (got < incl) {
      set_err(err, errcap, "record %llu: truncated (%zu of %u bytes)",
              (unsigned long long)r->records, got, (unsigned)incl);
      return -1;
    }
    size_t off, n;
    int rc = strip_link(r, r->buf, incl, &off, &n, err, errcap);
    if (rc < 0)
      return -1;
    if (rc == 0)
      continue;
    /* A lying nanosecond field (>= 1e9) still gives a monotone, bounded value. */
    *ts_us = (uint64_t)sec * 1000000u + (r->nsec ? frac / 1000u : frac);
    *pkt = r->buf + off;
    *len = n;
    return 1;
  }
}
