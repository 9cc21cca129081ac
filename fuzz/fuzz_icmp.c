/* libFuzzer target for src/wire/icmp.c and the stack's non-TCP input path
 * (src/stack/ip_icmp.c, src/tcp/tcp_icmp.c).
 *
 * For each input:
 *   - icmp_decode, icmp_quote_decode and udp_decode on the raw bytes must return
 *     WIRE_OK or an error code without reading outside the input (ASan) or UB;
 *   - a decoded ICMP message is re-encoded and must decode to the same fields;
 *   - the input is fed to a stack (as an IPv4 packet carrying ICMP, UDP or
 *     another protocol, and as an ICMP error quoting a segment of a live
 *     connection) so every answer path runs; the stack must stay sane.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "wire/icmp.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_icmp: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define ME 0x0a070002u
#define PEER 0x0a070001u

static uint8_t pkt[70000], pkt2[70000];
static uint8_t last_syn[128];
static size_t last_syn_len;

static void on_out(void *ctx, const uint8_t *p, size_t len)
{
  (void)ctx;
  struct tcp_packet tp;
  if (tcp_packet_decode(p, len, &tp) == WIRE_OK && len <= sizeof last_syn) {
    memcpy(last_syn, p, len);
    last_syn_len = len;
  }
}

static void codec(const uint8_t *data, size_t size)
{
  struct icmp_msg m;
  if (icmp_decode(data, size, &m) == WIRE_OK) {
    REQUIRE(m.data + m.data_len == data + size);
    int n = icmp_packet_encode(PEER, ME, 1, 0, m.type, m.code, m.rest, m.data, m.data_len,
                               pkt, sizeof pkt);
    REQUIRE(n == (int)(IPV4_HDR_LEN + size));
    struct icmp_msg m2;
    REQUIRE(icmp_decode(pkt + IPV4_HDR_LEN, size, &m2) == WIRE_OK);
    REQUIRE(m2.type == m.type && m2.code == m.code && m2.rest == m.rest &&
            m2.data_len == m.data_len && !memcmp(m2.data, m.data, m.data_len));
  }
  struct icmp_quote q;
  int rc = icmp_quote_decode(data, size, &q);
  REQUIRE(rc == WIRE_OK || rc == ICMP_E_QUOTE);
  struct udp_hdr u;
  rc = udp_decode(PEER, ME, data, size, &u);
  REQUIRE(rc == WIRE_OK || rc == WIRE_E_SHORT || rc == UDP_E_LENGTH || rc == UDP_E_CHECKSUM);
  if (rc == WIRE_OK) REQUIRE(u.length >= 8 && u.length <= size);
}

static size_t ip_wrap(uint8_t *buf, uint8_t proto, const uint8_t *payload, size_t plen)
{
  if (plen > 65535 - IPV4_HDR_LEN) plen = 65535 - IPV4_HDR_LEN;
  struct ipv4_hdr ip = {.version = 4, .ihl = 5, .total_len = (uint16_t)(IPV4_HDR_LEN + plen),
                        .id = 1, .ttl = 64, .proto = proto, .src = PEER, .dst = ME};
  ipv4_encode(&ip, buf, IPV4_HDR_LEN);
  memcpy(buf + IPV4_HDR_LEN, payload, plen);
  return IPV4_HDR_LEN + plen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  codec(data, size);
  struct ustcp_stack *s = ustcp_stack_new(NULL, ME, 7, on_out, NULL);
  if (!s) return 0;
  uint64_t now = 1000;
  ustcp_poll(s, now);
  /* the raw input as a packet, then wrapped as ICMP, UDP and protocol 47 */
  ustcp_input(s, data, size, now);
  uint8_t protos[3] = {IPPROTO_ICMP_, IPPROTO_UDP_, 47};
  for (int i = 0; i < 3; i++) ustcp_input(s, pkt2, ip_wrap(pkt2, protos[i], data, size), now);
  /* an ICMP error (type/code/rest from the input) quoting a live SYN, with the
   * input's bytes patched over the quote's tail */
  int fd = ustcp_socket(s);
  struct ustcp_addr a = {PEER, 80};
  last_syn_len = 0;
  ustcp_connect(s, fd, &a);
  if (last_syn_len && size >= 4) {
    uint8_t quote[600];
    size_t ql = last_syn_len;
    memcpy(quote, last_syn, ql);
    size_t extra = size - 4 < sizeof quote - ql ? size - 4 : sizeof quote - ql;
    if (data[3] & 1) {                     /* sometimes disturb the quoted header */
      for (size_t i = 0; i < extra && i < ql; i++) quote[i] ^= data[4 + i];
    } else {
      memcpy(quote + ql, data + 4, extra);
      ql += extra;
    }
    uint32_t rest = (uint32_t)data[2] << 8 | data[3];
    int n = icmp_packet_encode(PEER, ME, 2, 0, (uint8_t)(data[0] % 16), (uint8_t)(data[1] % 20),
                               rest, quote, ql, pkt, sizeof pkt);
    if (n > 0) ustcp_input(s, pkt, (size_t)n, now);
  }
  now += 200 * USTCP_SEC;
  ustcp_poll(s, now);
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  REQUIRE(st.icmp_out <= st.ip_out);
  ustcp_close(s, fd);
  ustcp_stack_free(s);
  return 0;
}
