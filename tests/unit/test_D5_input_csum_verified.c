/* D5 and the link's checksum offload: ustcp_input_flags(USTCP_IN_CSUM_VERIFIED).
 *
 * A TUN device with IFF_VNET_HDR and TUN_F_CSUM hands over the kernel's
 * CHECKSUM_PARTIAL packets (virtio_net_hdr flag NEEDS_CSUM): the TCP checksum
 * field holds only the pseudo-header sum, as Linux's __tcp_v4_send_check leaves
 * it, and the frame may be a GSO frame far larger than the MSS. The link driver
 * (src/link/loop.c) knows this from the header and tells the stack; nothing in
 * the packet itself can say so. Proven here:
 *   - such a segment is dropped and counted by ustcp_input (D5 still holds),
 *   - accepted by ustcp_input_flags(..., USTCP_IN_CSUM_VERIFIED),
 *   - the IPv4 header checksum is still verified under the flag,
 *   - unknown flag bits do not skip the check,
 *   - a segment larger than the MSS (a GSO frame) is delivered byte-exact.
 */
#include <string.h>
#include "check.h"
#include "rawpeer.h"

/* A data segment for connection c with the TCP checksum replaced by the bare
 * pseudo-header sum (what a CHECKSUM_PARTIAL skb carries). Returns its length. */
static size_t partial_csum_segment(struct rp_conn *c, const uint8_t *data, size_t len,
                                   uint8_t *pkt, size_t cap)
{
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = c->peer_port;
  h.dst_port = c->local_port;
  h.seq = c->snd_nxt;
  h.ack = c->rcv_nxt;
  h.flags = TCP_ACK | TCP_PSH;
  h.window = 65535;
  int n = tcp_packet_encode(&h, data, len, c->peer_ip, RP_LOCAL_IP, 9, pkt, cap);
  CHECK(n > 0);
  size_t seg_len = (size_t)n - IPV4_HDR_LEN;
  uint8_t ph[12] = {0};
  for (int i = 0; i < 4; i++) {
    ph[i] = (uint8_t)(c->peer_ip >> (24 - 8 * i));
    ph[4 + i] = (uint8_t)(RP_LOCAL_IP >> (24 - 8 * i));
  }
  ph[9] = 6;
  ph[10] = (uint8_t)(seg_len >> 8);
  ph[11] = (uint8_t)seg_len;
  uint32_t sum = 0;
  for (int i = 0; i < 12; i += 2) sum += (uint32_t)(ph[i] << 8 | ph[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  pkt[IPV4_HDR_LEN + 16] = (uint8_t)(sum >> 8);
  pkt[IPV4_HDR_LEN + 17] = (uint8_t)sum;
  return (size_t)n;
}

static void test_partial_checksum(void)
{
  struct rp r;
  rp_init(&r, NULL, 5);
  int lfd = rp_listen(&r, 80, 8);
  struct rp_conn c;
  CHECK(rp_handshake_in(&r, &c, lfd, RP_PEER_IP, 40000, 80, 1000, NULL) >= 0);
  static uint8_t data[20000], pkt[IPV4_HDR_LEN + 60 + 20000], got[20000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + i / 251);

  /* 1. The plain entry point drops it as a bad checksum (D5). */
  size_t n = partial_csum_segment(&c, data, 1000, pkt, sizeof pkt);
  struct ustcp_stats st0, st1;
  ustcp_get_stats(r.s, &st0);
  ustcp_input(r.s, pkt, n, r.now);
  ustcp_get_stats(r.s, &st1);
  CHECK_EQ(st1.tcp_bad_checksum, st0.tcp_bad_checksum + 1);
  CHECK_EQ(ustcp_recv(r.s, c.fd, got, sizeof got, 0), -EAGAIN);

  /* 2. Unknown flag bits are no licence. */
  ustcp_input_flags(r.s, pkt, n, r.now, 0x80000000u);
  ustcp_get_stats(r.s, &st1);
  CHECK_EQ(st1.tcp_bad_checksum, st0.tcp_bad_checksum + 2);

  /* 3. A bad IPv4 header checksum is still caught under the flag. */
  pkt[10] ^= 0x55;
  ustcp_input_flags(r.s, pkt, n, r.now, USTCP_IN_CSUM_VERIFIED);
  ustcp_get_stats(r.s, &st1);
  CHECK_EQ(st1.ip_bad, st0.ip_bad + 1);
  CHECK_EQ(ustcp_recv(r.s, c.fd, got, sizeof got, 0), -EAGAIN);
  pkt[10] ^= 0x55;

  /* 4. With the flag it is accepted. */
  ustcp_input_flags(r.s, pkt, n, r.now, USTCP_IN_CSUM_VERIFIED);
  CHECK_EQ(ustcp_recv(r.s, c.fd, got, sizeof got, 0), 1000);
  CHECK_MEM(got, data, 1000);
  c.snd_nxt += 1000;

  /* 5. A GSO-sized frame (13.7 MSS in one segment) is taken whole, byte-exact. */
  n = partial_csum_segment(&c, data + 1000, 19000, pkt, sizeof pkt);
  rp_clear(&r);
  ustcp_input_flags(r.s, pkt, n, r.now, USTCP_IN_CSUM_VERIFIED);
  CHECK_EQ(ustcp_recv(r.s, c.fd, got, sizeof got, 0), 19000);
  CHECK_MEM(got, data + 1000, 19000);
  c.snd_nxt += 19000;
  /* and acknowledged (at once or after the delayed-ACK timer) */
  rp_advance(&r, 300000);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.ack, c.snd_nxt);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  test_partial_checksum();
  return check_report();
}
