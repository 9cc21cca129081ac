/* src/wire/wire.c: the byte-level codecs declared in wire.h.
 *
 * Map:
 *   be16/be32/put16/put32   big-endian access through byte shifts (no unaligned
 *                           casts: every field may sit at any address)
 *   inet_csum_*             RFC 1071 Internet checksum; csum_native() is the fast
 *                           core (SSE2/AVX2 on x86-64 for long buffers, then 64-bit
 *                           loads with end-around carry)
 *   ipv4_decode/encode      RFC 791 §3.1 header
 *   tcp_decode              RFC 9293 §3.1 header, then tcp_opts_parse() (§3.2)
 *   tcp_opts_len/write      option layout, copied from Linux tcp_options_write()
 *   tcp_encode              header + options + payload + checksum
 *   tcp_packet_decode/encode  IPv4 + TCP together, both checksums
 *   tcp_flags_str, ipv4_str, ipv4_parse, wire_strerror   text helpers
 *
 * Every decoder checks a length before each read; nothing here reads outside
 * [buf, buf+len). Malformed input is reported with its own WIRE_E_* code, never
 * asserted on (DESIGN.md §6).
 */
#include "wire/wire.h"
#include "wire/bytes.h"
#include "wire/ipv6.h"

#include <stdio.h>
#include <string.h>

const char *wire_strerror(int err)
{
  switch (err) {
  case WIRE_OK: return "ok";
  case WIRE_E_SHORT: return "buffer shorter than the fixed header";
  case WIRE_E_VERSION: return "IP version is not 4";
  case WIRE_E_IHL: return "bad IPv4 header length";
  case WIRE_E_TOTAL_LEN: return "bad IPv4 total length";
  case WIRE_E_IP_CHECKSUM: return "bad IPv4 header checksum";
  case WIRE_E_FRAGMENT: return "IPv4 fragment";
  case WIRE_E_PROTO: return "unexpected protocol";
  case WIRE_E_DATA_OFFSET: return "bad TCP data offset";
  case WIRE_E_OPT_LEN: return "bad TCP option length";
  case WIRE_E_OPT_VALUE: return "bad TCP option value";
  case WIRE_E_TCP_CHECKSUM: return "bad TCP checksum";
  case WIRE_E_NOSPACE: return "no space in output buffer";
  case WIRE_E_IP_OPT: return "bad IPv4 option length";
  default: return "unknown wire error";
  }
}

/* ---- Internet checksum (RFC 1071) ---- */

/* Folds a 64-bit one's-complement accumulator to 16 bits. 2^16 = 1 (mod 0xffff),
 * so adding the high part back in (end-around carry) keeps the value. */
static uint16_t fold64(uint64_t s)
{
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return (uint16_t)s;
}

/* Adds v to a 64-bit accumulator with end-around carry (compilers emit add/adc). */
static uint64_t add64c(uint64_t acc, uint64_t v)
{
  acc += v;
  return acc + (acc < v);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CSUM_VECTOR 1
/* Vector cores: the plain sum (no folding) of the native-order 16-bit words of
 * p[0, n), n a multiple of 64 (SSE2) or 128 (AVX2). Each 32-bit lane adds the low
 * half-word of its 32-bit word to one accumulator and the high half-word to
 * another (a mask and a shift, no shuffles), so every lane grows by at most
 * 2 * 0xffff per iteration: the lanes are widened into the 64-bit total every
 * CSUM_VEC_FLUSH iterations, long before they could overflow. SSE2 is part of
 * x86-64, AVX2 is chosen at run time. */
#define CSUM_VEC_FLUSH 16384
static uint64_t csum_lanes_sse2(__m128i a)
{
  const __m128i zero = _mm_setzero_si128();
  __m128i w = _mm_add_epi64(_mm_unpacklo_epi32(a, zero), _mm_unpackhi_epi32(a, zero));
  return (uint64_t)_mm_cvtsi128_si64(w) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(w, w));
}

static uint64_t csum_sse2(const uint8_t *p, size_t n)
{
  const __m128i mask = _mm_set1_epi32(0xffff);
  uint64_t total = 0;
  while (n) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, b0 = a0, b1 = a0;
    for (unsigned k = 0; n && k < CSUM_VEC_FLUSH; k++, p += 64, n -= 64) {
      __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)p);
      __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
      __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
      __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
      a0 = _mm_add_epi32(a0, _mm_and_si128(v0, mask));
      b0 = _mm_add_epi32(b0, _mm_srli_epi32(v0, 16));
      a1 = _mm_add_epi32(a1, _mm_and_si128(v1, mask));
      b1 = _mm_add_epi32(b1, _mm_srli_epi32(v1, 16));
      a0 = _mm_add_epi32(a0, _mm_and_si128(v2, mask));
      b0 = _mm_add_epi32(b0, _mm_srli_epi32(v2, 16));
      a1 = _mm_add_epi32(a1, _mm_and_si128(v3, mask));
      b1 = _mm_add_epi32(b1, _mm_srli_epi32(v3, 16));
    }
    total += csum_lanes_sse2(a0) + csum_lanes_sse2(a1) + csum_lanes_sse2(b0) +
             csum_lanes_sse2(b1);
  }
  return total;
}

__attribute__((target("avx2"))) static uint64_t csum_lanes_avx2(__m256i a)
{
  const __m256i zero = _mm256_setzero_si256();
  __m256i w = _mm256_add_epi64(_mm256_unpacklo_epi32(a, zero), _mm256_unpackhi_epi32(a, zero));
  __m128i x = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return (uint64_t)_mm_cvtsi128_si64(x) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x));
}

__attribute__((target("avx2"))) static uint64_t csum_avx2(const uint8_t *p, size_t n)
{
  const __m256i mask = _mm256_set1_epi32(0xffff);
  uint64_t total = 0;
  while (n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
    for (unsigned k = 0; n && k < CSUM_VEC_FLUSH; k++, p += 128, n -= 128) {
      __m256i v0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
      __m256i v1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
      __m256i v2 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 64));
      __m256i v3 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 96));
      a0 = _mm256_add_epi32(a0, _mm256_and_si256(v0, mask));
      b0 = _mm256_add_epi32(b0, _mm256_srli_epi32(v0, 16));
      a1 = _mm256_add_epi32(a1, _mm256_and_si256(v1, mask));
      b1 = _mm256_add_epi32(b1, _mm256_srli_epi32(v1, 16));
      a0 = _mm256_add_epi32(a0, _mm256_and_si256(v2, mask));
      b0 = _mm256_add_epi32(b0, _mm256_srli_epi32(v2, 16));
      a1 = _mm256_add_epi32(a1, _mm256_and_si256(v3, mask));
      b1 = _mm256_add_epi32(b1, _mm256_srli_epi32(v3, 16));
    }
    total += csum_lanes_avx2(a0) + csum_lanes_avx2(a1) + csum_lanes_avx2(b0) +
             csum_lanes_avx2(b1);
  }
  return total;
}

/* csum_avx2 that also stores what it loads to dst: copy and sum in one pass. */
__attribute__((target("avx2"))) static uint64_t csum_copy_avx2(uint8_t *dst, const uint8_t *p,
                                                               size_t n)
{
  const __m256i mask = _mm256_set1_epi32(0xffff);
  uint64_t total = 0;
  while (n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, b0 = a0, b1 = a0;
    for (unsigned k = 0; n && k < CSUM_VEC_FLUSH; k++, p += 128, dst += 128, n -= 128) {
      __m256i v0 = _mm256_loadu_si256((const __m256i *)(const void *)p);
      __m256i v1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
      __m256i v2 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 64));
      __m256i v3 = _mm256_loadu_si256((const __m256i *)(const void *)(p + 96));
      _mm256_storeu_si256((__m256i *)(void *)dst, v0);
      _mm256_storeu_si256((__m256i *)(void *)(dst + 32), v1);
      _mm256_storeu_si256((__m256i *)(void *)(dst + 64), v2);
      _mm256_storeu_si256((__m256i *)(void *)(dst + 96), v3);
      a0 = _mm256_add_epi32(a0, _mm256_and_si256(v0, mask));
      b0 = _mm256_add_epi32(b0, _mm256_srli_epi32(v0, 16));
      a1 = _mm256_add_epi32(a1, _mm256_and_si256(v1, mask));
      b1 = _mm256_add_epi32(b1, _mm256_srli_epi32(v1, 16));
      a0 = _mm256_add_epi32(a0, _mm256_and_si256(v2, mask));
      b0 = _mm256_add_epi32(b0, _mm256_srli_epi32(v2, 16));
      a1 = _mm256_add_epi32(a1, _mm256_and_si256(v3, mask));
      b1 = _mm256_add_epi32(b1, _mm256_srli_epi32(v3, 16));
    }
    total += csum_lanes_avx2(a0) + csum_lanes_avx2(a1) + csum_lanes_avx2(b0) +
             csum_lanes_avx2(b1);
  }
  return total;
}
#endif

/* Folds a native-order accumulator and returns the big-endian 16-bit sum. */
static uint16_t csum_finish(uint64_t acc)
{
  uint16_t s = fold64(acc);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = (uint16_t)(s >> 8 | s << 8);
#endif
  return s;
}

/* The one's-complement sum of data as native-order 16-bit words, folded to 16 bits.
 * RFC 1071 §2(B): the sum is byte-order independent, so summing in native order and
 * swapping once at the end gives the big-endian sum. Loads go through memcpy, so an
 * odd start address is fine. An odd trailing byte is padded with zero, at its own
 * position in memory, so it lands in the high byte of a big-endian word.
 * Long buffers go through a vector core first (a plain sum of the same words, so
 * it joins the 64-bit end-around-carry accumulator: 2^64 - 1 is a multiple of
 * 0xffff); the scalar loops take what is left, at the same word alignment. */
static uint16_t csum_native(const uint8_t *p, size_t len)
{
  uint64_t acc = 0, w0, w1, w2, w3;
#ifdef CSUM_VECTOR
  if (len >= 256) {
    size_t n;
    if (__builtin_cpu_supports("avx2")) {
      n = len & ~(size_t)127;
      acc = csum_avx2(p, n);
    } else {
      n = len & ~(size_t)63;
      acc = csum_sse2(p, n);
    }
    p += n;
    len -= n;
  }
#endif
  while (len >= 32) {
    memcpy(&w0, p, 8);
    memcpy(&w1, p + 8, 8);
    memcpy(&w2, p + 16, 8);
    memcpy(&w3, p + 24, 8);
    acc = add64c(acc, w0);
    acc = add64c(acc, w1);
    acc = add64c(acc, w2);
    acc = add64c(acc, w3);
    p += 32;
    len -= 32;
  }
  while (len >= 8) {
    memcpy(&w0, p, 8);
    acc = add64c(acc, w0);
    p += 8;
    len -= 8;
  }
  /* The last 0..7 bytes, in pieces at even offsets (each piece is a whole number
   * of native words, wherever it sits: 2^16 = 1 mod 0xffff). Direct loads: going
   * through a zeroed stack buffer stalled on store forwarding. */
  if (len & 4) {
    uint32_t x;
    memcpy(&x, p, 4);
    acc = add64c(acc, x);
    p += 4;
  }
  if (len & 2) {
    uint16_t x;
    memcpy(&x, p, 2);
    acc = add64c(acc, x);
    p += 2;
  }
  if (len & 1) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    acc = add64c(acc, p[0]);
#else
    acc = add64c(acc, (uint64_t)p[0] << 8);
#endif
  }
  return csum_finish(acc);
}

/* Copies len bytes from src to dst (which must not overlap) and returns what
 * csum_native(dst, len) would: the data is summed from the registers it was
 * loaded into, in the same pass, instead of being read back from dst. */
static uint16_t csum_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
  uint32_t sum = 0;
#ifdef CSUM_VECTOR
  if (len >= 256 && __builtin_cpu_supports("avx2")) {
    size_t n = len & ~(size_t)127;
    sum = csum_finish(csum_copy_avx2(dst, src, n));
    dst += n;
    src += n;
    len -= n;
  }
#endif
  memcpy(dst, src, len);
  /* The rest starts at an even offset (n is a multiple of 128): the sums add. */
  return fold64((uint64_t)sum + csum_native(dst, len));
}

uint32_t inet_csum_add(uint32_t sum, const void *data, size_t len)
{
  /* The result is folded to 16 bits: equal to the plain sum modulo 0xffff, which is
   * all one's-complement arithmetic needs, and a caller can keep adding forever. */
  return fold64((uint64_t)sum + csum_native(data, len));
}

uint16_t inet_csum_fold(uint32_t sum) { return (uint16_t)~fold64(sum); }

uint16_t inet_checksum(const void *data, size_t len)
{
  return inet_csum_fold(inet_csum_add(0, data, len));
}

uint32_t tcp_pseudo_sum(uint32_t src_ip, uint32_t dst_ip, uint8_t proto, uint16_t len)
{
  /* RFC 9293 §3.1: src (2 words), dst (2 words), zero|proto, TCP length. */
  return (src_ip >> 16) + (src_ip & 0xffff) + (dst_ip >> 16) + (dst_ip & 0xffff) +
         proto + len;
}

bool tcp_checksum_ok(uint32_t src_ip, uint32_t dst_ip, const uint8_t *seg, size_t len)
{
  /* The pseudo-header length is 16 bits; IPv4 can carry nothing longer. */
  if (len > 0xffff) return false;
  uint32_t s = tcp_pseudo_sum(src_ip, dst_ip, IPPROTO_TCP_, (uint16_t)len);
  /* Summing a segment that includes a correct checksum gives 0xffff, i.e. the
   * folded complement is 0 (RFC 1071 §1, "verify"). */
  return inet_csum_fold(inet_csum_add(s, seg, len)) == 0;
}

/* ---- IPv4 (RFC 791 §3.1) ---- */

/* Walks the option list of an IPv4 header (at most 40 bytes, so the loop is
 * bounded by the header) and reports what matters to the stack in *flags. The
 * rules are those of Linux's ip_options_compile: End of Option List ends the
 * list (what follows is ignored), NOP is one byte, every other option has a
 * length byte of at least 2 that stays inside the header, and a source route
 * needs at least its pointer byte (length >= 3). The contents of other options
 * (Record Route, Timestamp, ...) are not interpreted: a host that only receives
 * has no use for them. */
static int ipv4_options_walk(const uint8_t *opt, size_t len, uint8_t *flags)
{
  size_t i = 0;
  while (i < len) {
    uint8_t kind = opt[i];
    if (kind == IPOPT_EOL_) break;
    if (kind == IPOPT_NOP_) {
      i++;
      continue;
    }
    if (len - i < 2) return WIRE_E_IP_OPT;
    uint8_t olen = opt[i + 1];
    if (olen < 2 || olen > len - i) return WIRE_E_IP_OPT;
    if (kind == IPOPT_LSRR_ || kind == IPOPT_SSRR_) {
      if (olen < 3) return WIRE_E_IP_OPT;
      *flags |= IPV4_OPT_SRR;
    }
    i += olen;
  }
  return WIRE_OK;
}

int ipv4_decode(const uint8_t *buf, size_t len, struct ipv4_hdr *out,
                const uint8_t **payload, size_t *payload_len)
{
  if (len < IPV4_HDR_LEN) return WIRE_E_SHORT;
  uint8_t version = buf[0] >> 4, ihl = buf[0] & 0x0f;
  if (version != 4) return WIRE_E_VERSION;
  size_t hlen = (size_t)ihl * 4;
  if (ihl < 5 || hlen > len) return WIRE_E_IHL;
  uint16_t total = be16(buf + 2);
  /* Link-layer padding past total_len (e.g. Ethernet's 60-byte minimum) is
   * allowed and excluded; a total_len past the buffer means truncation. */
  if (total < hlen || total > len) return WIRE_E_TOTAL_LEN;
  if (inet_checksum(buf, hlen) != 0) return WIRE_E_IP_CHECKSUM;
  uint8_t opt_flags = 0;
  if (hlen > IPV4_HDR_LEN) {
    int err = ipv4_options_walk(buf + IPV4_HDR_LEN, hlen - IPV4_HDR_LEN, &opt_flags);
    if (err != WIRE_OK) return err;
  }

  memset(out, 0, sizeof *out);
  out->version = version;
  out->ihl = ihl;
  out->tos = buf[1];
  out->total_len = total;
  out->id = be16(buf + 4);
  out->flags = (uint8_t)(buf[6] >> 5);
  out->frag_off = be16(buf + 6) & 0x1fff;
  out->ttl = buf[8];
  out->proto = buf[9];
  out->checksum = be16(buf + 10);
  out->src = be32(buf + 12);
  out->dst = be32(buf + 16);
  out->opt_flags = opt_flags;
  if (payload) *payload = buf + hlen;
  if (payload_len) *payload_len = total - hlen;
  return WIRE_OK;
}

int ipv4_encode(const struct ipv4_hdr *h, uint8_t *buf, size_t cap)
{
  if (cap < IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  buf[0] = 0x45; /* version 4, IHL 5: ustcp never sends IP options */
  buf[1] = h->tos;
  put16(buf + 2, h->total_len);
  put16(buf + 4, h->id);
  put16(buf + 6, (uint16_t)((h->flags & 0x7u) << 13 | (h->frag_off & 0x1fffu)));
  buf[8] = h->ttl;
  buf[9] = h->proto;
  put16(buf + 10, 0);
  put32(buf + 12, h->src);
  put32(buf + 16, h->dst);
  /* The header's ten words, summed from the fields rather than read back from
   * the bytes just stored (a load of fresh byte stores stalls the CPU). */
  uint32_t sum = (0x45u << 8 | h->tos) + h->total_len + h->id +
                 ((h->flags & 0x7u) << 13 | (h->frag_off & 0x1fffu)) +
                 ((uint32_t)h->ttl << 8 | h->proto) + (h->src >> 16) + (h->src & 0xffff) +
                 (h->dst >> 16) + (h->dst & 0xffff);
  put16(buf + 10, inet_csum_fold(sum));
  return IPV4_HDR_LEN;
}

/* ---- TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018) ---- */

/* Parses the option bytes opt[0..len). Kind 0 (EOL) ends the list; NOP is one byte;
 * every other kind has a length byte counting kind and length (RFC 9293 §3.2).
 * Unknown kinds are skipped by that length (RFC 9293 §3.2: "must be prepared to
 * handle an illegal option length ... without crashing"; RFC 1122 §4.2.2.5). A
 * repeated option overwrites the earlier one, as Linux tcp_parse_options() does. */
static int tcp_opts_parse(const uint8_t *opt, size_t len, struct tcp_opts *o)
{
  size_t i = 0;
  while (i < len) {
    uint8_t kind = opt[i];
    if (kind == TCPOPT_EOL) break;
    if (kind == TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= len) return WIRE_E_OPT_LEN; /* length byte missing */
    uint8_t olen = opt[i + 1];
    if (olen < 2 || olen > len - i) return WIRE_E_OPT_LEN;
    const uint8_t *v = opt + i + 2;
    switch (kind) {
    case TCPOPT_MSS:
      if (olen != 4) return WIRE_E_OPT_VALUE;
      o->mss = be16(v);
      o->present |= TCP_OPT_HAS_MSS;
      break;
    case TCPOPT_WSCALE:
      if (olen != 3) return WIRE_E_OPT_VALUE;
      o->wscale = v[0]; /* kept as sent; clamping to 14 is the engine's job */
      o->present |= TCP_OPT_HAS_WSCALE;
      break;
    case TCPOPT_SACK_PERM:
      if (olen != 2) return WIRE_E_OPT_VALUE;
      o->present |= TCP_OPT_HAS_SACK_PERM;
      break;
    case TCPOPT_SACK: {
      /* RFC 2018 §3: 2 + 8n bytes; 40 bytes of option space allow at most 4. */
      size_t n = (size_t)(olen - 2) / 8;
      if ((olen - 2) % 8 != 0 || n < 1 || n > TCP_MAX_SACK_BLOCKS) return WIRE_E_OPT_VALUE;
      for (size_t b = 0; b < n; b++) {
        o->sack[b].left = be32(v + 8 * b);
        o->sack[b].right = be32(v + 8 * b + 4);
      }
      o->sack_count = (uint8_t)n;
      o->present |= TCP_OPT_HAS_SACK;
      break;
    }
    case TCPOPT_TS:
      if (olen != 10) return WIRE_E_OPT_VALUE;
      o->ts_val = be32(v);
      o->ts_ecr = be32(v + 4);
      o->present |= TCP_OPT_HAS_TS;
      break;
    default:
      if (o->unknown_count < UINT8_MAX) o->unknown_count++;
      break;
    }
    i += olen;
  }
  return WIRE_OK;
}

/* ---- TCP header (RFC 9293 §3.1) ---- */

int tcp_decode(const uint8_t *seg, size_t len, struct tcp_hdr *out,
               const uint8_t **payload, size_t *payload_len)
{
  if (len < TCP_HDR_LEN) return WIRE_E_SHORT;
  uint8_t doff = seg[12] >> 4;
  size_t hlen = (size_t)doff * 4;
  if (doff < 5 || hlen > len) return WIRE_E_DATA_OFFSET;

  memset(out, 0, sizeof *out);
  int err = tcp_opts_parse(seg + TCP_HDR_LEN, hlen - TCP_HDR_LEN, &out->opts);
  if (err != WIRE_OK) return err;
  out->src_port = be16(seg);
  out->dst_port = be16(seg + 2);
  out->seq = be32(seg + 4);
  out->ack = be32(seg + 8);
  out->data_off = doff;
  out->reserved = seg[12] & 0x0f;
  out->flags = seg[13];
  out->window = be16(seg + 14);
  out->checksum = be16(seg + 16);
  out->urg_ptr = be16(seg + 18);
  if (payload) *payload = seg + hlen;
  if (payload_len) *payload_len = len - hlen;
  return WIRE_OK;
}

/* Option layout, copied from Linux tcp_options_write() so that our SYNs look like
 * Linux's on the wire:
 *   MSS             02 04 mm mm
 *   SACK_PERM + TS  04 02 08 0a <val> <ecr>     (SACK_PERM fills TS's padding)
 *   TS alone        01 01 08 0a <val> <ecr>
 *   SACK_PERM alone 01 01 04 02
 *   WSCALE          01 03 03 ss
 *   SACK            01 01 05 (2+8n) <blocks>
 * Every piece is a multiple of 4 bytes, so the total needs no further padding and
 * 32-bit fields (TS, SACK edges) sit 4-byte aligned. */
size_t tcp_opts_len(const struct tcp_opts *o)
{
  size_t n = 0;
  if (o->present & TCP_OPT_HAS_MSS) n += 4;
  if (o->present & TCP_OPT_HAS_TS) n += 12;
  else if (o->present & TCP_OPT_HAS_SACK_PERM) n += 4;
  if (o->present & TCP_OPT_HAS_WSCALE) n += 4;
  if ((o->present & TCP_OPT_HAS_SACK) && o->sack_count > 0) n += 4 + 8 * (size_t)o->sack_count;
  return n;
}

/* Writes the options laid out as above; the caller has checked the space. */
static void tcp_opts_write(const struct tcp_opts *o, uint8_t *p)
{
  if (o->present & TCP_OPT_HAS_MSS) {
    p[0] = TCPOPT_MSS;
    p[1] = 4;
    put16(p + 2, o->mss);
    p += 4;
  }
  if (o->present & TCP_OPT_HAS_TS) {
    if (o->present & TCP_OPT_HAS_SACK_PERM) {
      p[0] = TCPOPT_SACK_PERM;
      p[1] = 2;
    } else {
      p[0] = TCPOPT_NOP;
      p[1] = TCPOPT_NOP;
    }
    p[2] = TCPOPT_TS;
    p[3] = 10;
    put32(p + 4, o->ts_val);
    put32(p + 8, o->ts_ecr);
    p += 12;
  } else if (o->present & TCP_OPT_HAS_SACK_PERM) {
    p[0] = TCPOPT_NOP;
    p[1] = TCPOPT_NOP;
    p[2] = TCPOPT_SACK_PERM;
    p[3] = 2;
    p += 4;
  }
  if (o->present & TCP_OPT_HAS_WSCALE) {
    p[0] = TCPOPT_NOP;
    p[1] = TCPOPT_WSCALE;
    p[2] = 3;
    p[3] = o->wscale;
    p += 4;
  }
  if ((o->present & TCP_OPT_HAS_SACK) && o->sack_count > 0) {
    p[0] = TCPOPT_NOP;
    p[1] = TCPOPT_NOP;
    p[2] = TCPOPT_SACK;
    p[3] = (uint8_t)(2 + 8 * o->sack_count);
    p += 4;
    for (unsigned b = 0; b < o->sack_count; b++) {
      put32(p, o->sack[b].left);
      put32(p + 4, o->sack[b].right);
      p += 8;
    }
  }
}

/* The TCP header of tcp_encode (options included) into buf, checksum field
 * zero; returns its length and the sum over everything but the payload (the
 * pseudo-header counting plen). */
static int tcp_encode_hdr(const struct tcp_hdr *h, size_t plen, uint32_t src_ip, uint32_t dst_ip,
                          uint8_t *buf, size_t cap, size_t bufcap_for_payload, uint32_t *sum)
{
  if (h->opts.sack_count > TCP_MAX_SACK_BLOCKS) return WIRE_E_NOSPACE;
  size_t olen = tcp_opts_len(&h->opts);
  if (olen > TCP_MAX_HDR_LEN - TCP_HDR_LEN) return WIRE_E_NOSPACE;
  size_t hlen = TCP_HDR_LEN + olen;
  if (plen > 0xffff - hlen || hlen + bufcap_for_payload > cap) return WIRE_E_NOSPACE;
  put16(buf, h->src_port);
  put16(buf + 2, h->dst_port);
  put32(buf + 4, h->seq);
  put32(buf + 8, h->ack);
  buf[12] = (uint8_t)(hlen / 4) << 4;
  buf[13] = h->flags;
  put16(buf + 14, h->window);
  put16(buf + 16, 0);
  put16(buf + 18, h->urg_ptr);
  tcp_opts_write(&h->opts, buf + TCP_HDR_LEN);
  uint32_t s = tcp_pseudo_sum(src_ip, dst_ip, IPPROTO_TCP_, (uint16_t)(hlen + plen)) +
               h->src_port + h->dst_port + (h->seq >> 16) + (h->seq & 0xffff) +
               (h->ack >> 16) + (h->ack & 0xffff) + ((uint32_t)(hlen / 4) << 12 | h->flags) +
               h->window + h->urg_ptr;
  if (olen) s = inet_csum_add(s, buf + TCP_HDR_LEN, olen);
  *sum = s;
  return (int)hlen;
}

static void ipv4_encode_tcp(uint8_t *buf, size_t cap, size_t seg_len, uint16_t ip_id,
                            uint32_t src_ip, uint32_t dst_ip, uint8_t tos)
{
  struct ipv4_hdr ip = {
    .version = 4,
    .ihl = 5,
    .tos = tos,
    .total_len = (uint16_t)(IPV4_HDR_LEN + seg_len),
    .id = ip_id,
    .flags = IPV4_FLAG_DF, /* as Linux: PMTU discovery (RFC 1191) on every segment */
    .ttl = 64,             /* Linux's default net.ipv4.ip_default_ttl */
    .proto = IPPROTO_TCP_,
    .src = src_ip,
    .dst = dst_ip,
  };
  ipv4_encode(&ip, buf, cap);
}

int tcp_packet_encode_gather(const struct tcp_hdr *h, const struct wire_slice *pl, size_t npl,
                             uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                             uint8_t *buf, size_t cap)
{
  return tcp_packet_encode_gather_tos(h, pl, npl, src_ip, dst_ip, ip_id, 0, buf, cap);
}

int tcp_packet_encode_gather_tos(const struct tcp_hdr *h, const struct wire_slice *pl,
                                 size_t npl, uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                                 uint8_t tos, uint8_t *buf, size_t cap)
{
  size_t plen = 0;
  for (size_t i = 0; i < npl; i++) {
    if (pl[i].len > 0xffff) return WIRE_E_NOSPACE;
    plen += pl[i].len;
  }
  if (cap < IPV4_HDR_LEN || plen > 0xffff) return WIRE_E_NOSPACE;
  uint32_t s;
  int hlen = tcp_encode_hdr(h, plen, src_ip, dst_ip, buf + IPV4_HDR_LEN, cap - IPV4_HDR_LEN, 0, &s);
  if (hlen < 0) return hlen;
  if ((size_t)hlen + plen > 0xffff - IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  /* RFC 1071 §2(B): the sum does not depend on byte order, and a piece that
   * starts at an odd offset contributes its own sum with the two bytes of
   * every word swapped (x * 256 mod 0xffff). The header ends at an even
   * offset (a multiple of 4). */
  size_t at = 0;
  for (size_t i = 0; i < npl; i++) {
    uint32_t part = inet_csum_add(0, pl[i].base, pl[i].len);
    if (at & 1) part = fold64((uint64_t)part << 8);
    s = fold64((uint64_t)s + part);
    at += pl[i].len;
  }
  put16(buf + IPV4_HDR_LEN + 16, inet_csum_fold(s));
  ipv4_encode_tcp(buf, cap, (size_t)hlen + plen, ip_id, src_ip, dst_ip, tos);
  return IPV4_HDR_LEN + hlen;
}

int tcp_encode(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
               uint32_t src_ip, uint32_t dst_ip, uint8_t *buf, size_t cap)
{
  /* The pseudo-header carries the length in 16 bits (checked there). */
  uint32_t s;
  int hl = tcp_encode_hdr(h, plen, src_ip, dst_ip, buf, cap, plen, &s);
  if (hl < 0) return hl;
  size_t hlen = (size_t)hl;
  size_t total = hlen + plen;
  /* Checksum: the pseudo-header and the fixed header from the fields (not read
   * back from the bytes just stored), the options from buf (tcp_encode_hdr), and
   * the payload while it is copied (one pass). Each part starts at an even
   * offset, so the sums add. */
  if (plen) {
    uint8_t *dst = buf + hlen;
    uintptr_t d = (uintptr_t)dst, p = (uintptr_t)payload;
    if (p == d) {
      s = inet_csum_add(s, dst, plen);              /* already in place */
    } else if (p < d + plen && d < p + plen) {
      memmove(dst, payload, plen);                  /* overlapping: copy, then sum */
      s = inet_csum_add(s, dst, plen);
    } else {
      s = fold64((uint64_t)s + csum_copy(dst, payload, plen));
    }
  }
  put16(buf + 16, inet_csum_fold(s));
  return (int)total;
}

/* tcp_encode with the IPv6 pseudo-header (RFC 8200 §8.1): encoded with an IPv4
 * pseudo-header of zero addresses, then the checksum adjusted for the difference
 * between the two pseudo-headers (RFC 1624 eqn. 3), so the payload is summed
 * once, while it is copied. */
int tcp_encode6(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                const uint8_t src[16], const uint8_t dst[16], uint8_t *buf, size_t cap)
{
  int n = tcp_encode(h, payload, plen, 0, 0, buf, cap);
  if (n < 0) return n;
  uint16_t hc = (uint16_t)(buf[16] << 8 | buf[17]);
  uint16_t m4 = (uint16_t)~inet_csum_fold(tcp_pseudo_sum(0, 0, IPPROTO_TCP_, (uint16_t)n));
  uint16_t m6 = (uint16_t)~inet_csum_fold(ipv6_pseudo_sum(src, dst, (uint32_t)n, IPPROTO_TCP_));
  uint32_t sum = (uint32_t)(uint16_t)~hc + (uint16_t)~m4 + m6;
  put16(buf + 16, inet_csum_fold(sum));
  return n;
}

/* ---- IPv4 + TCP ---- */

int tcp_packet_decode(const uint8_t *buf, size_t len, struct tcp_packet *out)
{
  const uint8_t *seg;
  size_t seg_len;
  int err = ipv4_decode(buf, len, &out->ip, &seg, &seg_len);
  if (err != WIRE_OK) return err;
  /* ustcp does no reassembly (DESIGN.md §2); a fragment's TCP header is partial
   * or absent, so reject before looking at the protocol's bytes. */
  if ((out->ip.flags & IPV4_FLAG_MF) || out->ip.frag_off != 0) return WIRE_E_FRAGMENT;
  if (out->ip.proto != IPPROTO_TCP_) return WIRE_E_PROTO;
  return tcp_segment_decode(&out->ip, seg, seg_len, out);
}

static int segment_decode(const struct ipv4_hdr *ip, const uint8_t *seg, size_t seg_len,
                          struct tcp_packet *out, bool check_tcp);

int tcp_segment_decode(const struct ipv4_hdr *ip, const uint8_t *seg, size_t seg_len,
                       struct tcp_packet *out)
{
  return segment_decode(ip, seg, seg_len, out, true);
}

int tcp_segment_decode_csum_verified(const struct ipv4_hdr *ip, const uint8_t *seg,
                                     size_t seg_len, struct tcp_packet *out)
{
  return segment_decode(ip, seg, seg_len, out, false);
}

static int segment_decode(const struct ipv4_hdr *ip, const uint8_t *seg, size_t seg_len,
                          struct tcp_packet *out, bool check_tcp)
{
  if (&out->ip != ip) out->ip = *ip;
  out->v6 = false;
  /* Like Linux tcp_v4_rcv(): check the fixed header and data offset, then the
   * checksum, and only then parse options, so a corrupted option byte counts as a
   * checksum error rather than as a malformed option. */
  if (seg_len < TCP_HDR_LEN) return WIRE_E_SHORT;
  size_t hlen = (size_t)(seg[12] >> 4) * 4;
  if (hlen < TCP_HDR_LEN || hlen > seg_len) return WIRE_E_DATA_OFFSET;
  if (check_tcp && !tcp_checksum_ok(out->ip.src, out->ip.dst, seg, seg_len))
    return WIRE_E_TCP_CHECKSUM;
  return tcp_decode(seg, seg_len, &out->tcp, &out->payload, &out->payload_len);
}

int tcp_packet_encode(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                      uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                      uint8_t *buf, size_t cap)
{
  return tcp_packet_encode_tos(h, payload, plen, src_ip, dst_ip, ip_id, 0, buf, cap);
}

int tcp_packet_encode_tos(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                          uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                          uint8_t *buf, size_t cap)
{
  if (cap < IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  int n = tcp_encode(h, payload, plen, src_ip, dst_ip, buf + IPV4_HDR_LEN, cap - IPV4_HDR_LEN);
  if (n < 0) return n;
  if ((size_t)n > 0xffff - IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  ipv4_encode_tcp(buf, cap, (size_t)n, ip_id, src_ip, dst_ip, tos);
  return IPV4_HDR_LEN + n;
}

/* As tcp_packet_encode_tos, with the TCP checksum left to the link: the field
 * gets the pseudo-header sum alone (folded, not complemented: what Linux's
 * __tcp_v4_send_check leaves for a CHECKSUM_PARTIAL skb) and the payload is
 * copied without being summed; the link completes the sum over [IPv4 header
 * end, packet end). */
int tcp_packet_encode_partial(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                              uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                              uint8_t *buf, size_t cap)
{
  if (cap < IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  uint8_t *seg = buf + IPV4_HDR_LEN;
  uint32_t s;
  int hl = tcp_encode_hdr(h, plen, src_ip, dst_ip, seg, cap - IPV4_HDR_LEN, plen, &s);
  if (hl < 0) return hl;
  size_t total = (size_t)hl + plen;
  if (total > 0xffff - IPV4_HDR_LEN) return WIRE_E_NOSPACE;
  if (plen && payload != seg + hl) memmove(seg + hl, payload, plen);
  put16(seg + 16, (uint16_t)~inet_csum_fold(tcp_pseudo_sum(src_ip, dst_ip, IPPROTO_TCP_, (uint16_t)total)));
  ipv4_encode_tcp(buf, cap, total, ip_id, src_ip, dst_ip, tos);
  return IPV4_HDR_LEN + (int)total;
}

/* As tcp_encode6, with the TCP checksum left to the link (TSO6/checksum
 * offload): the field holds the IPv6 pseudo-header sum alone (RFC 8200 §8.1,
 * folded, not complemented, as Linux's __tcp_v6_send_check leaves it for a
 * CHECKSUM_PARTIAL skb), and the payload is copied without being summed. */
int tcp_encode6_partial(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                        const uint8_t src[16], const uint8_t dst[16], uint8_t *buf, size_t cap)
{
  uint32_t unused;
  int hl = tcp_encode_hdr(h, plen, 0, 0, buf, cap, plen, &unused);
  if (hl < 0) return hl;
  size_t total = (size_t)hl + plen;
  if (plen && payload != buf + hl) memmove(buf + hl, payload, plen);
  put16(buf + 16, (uint16_t)~inet_csum_fold(ipv6_pseudo_sum(src, dst, (uint32_t)total, IPPROTO_TCP_)));
  return (int)total;
}

/* ---- text ---- */

const char *tcp_flags_str(uint8_t flags, char *buf, size_t cap)
{
  /* packetdrill's order; "." stands for ACK. */
  static const struct { uint8_t bit; char c; } map[] = {
    {TCP_FIN, 'F'}, {TCP_SYN, 'S'}, {TCP_RST, 'R'}, {TCP_PSH, 'P'},
    {TCP_ACK, '.'}, {TCP_URG, 'U'}, {TCP_ECE, 'E'}, {TCP_CWR, 'W'},
  };
  if (cap == 0) return buf;
  size_t n = 0;
  for (size_t i = 0; i < sizeof map / sizeof map[0] && n + 1 < cap; i++)
    if (flags & map[i].bit) buf[n++] = map[i].c;
  buf[n] = '\0';
  return buf;
}

const char *ipv4_str(uint32_t addr, char *buf, size_t cap)
{
  if (cap == 0) return buf;
  snprintf(buf, cap, "%u.%u.%u.%u", (unsigned)(addr >> 24), (unsigned)(addr >> 16 & 0xff),
           (unsigned)(addr >> 8 & 0xff), (unsigned)(addr & 0xff));
  return buf;
}

int ipv4_parse(const char *s, uint32_t *addr)
{
  /* Strict dotted quad, as inet_pton(AF_INET): four decimal parts 0..255, no
   * leading zeros (which inet_aton would read as octal), nothing else. */
  uint32_t a = 0;
  if (!s) return -1;
  for (int part = 0; part < 4; part++) {
    if (part > 0 && *s++ != '.') return -1;
    if (*s < '0' || *s > '9') return -1;
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') return -1;
    unsigned v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
      if (++digits > 3) return -1;
      v = v * 10 + (unsigned)(*s++ - '0');
    }
    if (v > 255) return -1;
    a = a << 8 | v;
  }
  if (*s != '\0') return -1;
  *addr = a;
  return 0;
}
