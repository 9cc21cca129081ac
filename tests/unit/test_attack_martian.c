/* Attack class: martian addresses (issue 10, point 1).
 *
 * A packet whose source cannot be one host on the network -- our own address
 * arriving from the link, 0.0.0.0/8, 127.0.0.0/8, multicast 224.0.0.0/4,
 * 240.0.0.0/4 and the limited broadcast 255.255.255.255 -- is dropped at IP
 * input and counted in ip_martian_src, before TCP, UDP or ICMP see it: no
 * SYN-ACK, no RST, no ICMP error or echo reply goes back (Linux:
 * ip_route_input_slow's martian_source; RFC 1122 3.2.1.3 and 3.2.2). A packet
 * whose destination is not our unicast address (broadcast, multicast, someone
 * else) is counted in ip_not_for_us and not answered. connect() to a
 * non-unicast address fails with ENETUNREACH, as Linux's tcp_v4_connect does
 * for a broadcast or multicast route, and nothing is sent. */
#include "check.h"
#include "rawpeer.h"
#include "wire/icmp.h"

static const uint32_t martians[] = {
  0x00000000u,   /* 0.0.0.0 */
  0x00010203u,   /* 0.1.2.3 */
  0x7f000001u,   /* 127.0.0.1 */
  0x7fff0009u,   /* 127.255.0.9 */
  0xe0000001u,   /* 224.0.0.1 */
  0xeffffffau,   /* 239.255.255.250 */
  0xf0000001u,   /* 240.0.0.1 */
  0xfffffffeu,   /* 255.255.255.254 (240/4) */
  0xffffffffu,   /* 255.255.255.255 */
  RP_LOCAL_IP,   /* our own address, from the link */
};
#define NMARTIANS (sizeof martians / sizeof martians[0])

/* An IPv4 packet with no options: proto, payload as given. */
static size_t ip_pkt(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto,
                     const uint8_t *payload, size_t plen)
{
  struct ipv4_hdr ip = {.version = 4, .ihl = 5, .total_len = (uint16_t)(20 + plen), .id = 9,
                        .ttl = 64, .proto = proto, .src = src, .dst = dst};
  ipv4_encode(&ip, buf, 20);
  memcpy(buf + 20, payload, plen);
  return 20 + plen;
}

static void send_udp(struct rp *r, uint32_t src, uint32_t dst)
{
  uint8_t u[12] = {0x30, 0x39, 0x00, 0x35, 0x00, 12, 0, 0, 'a', 'b', 'c', 'd'};  /* no checksum */
  uint8_t pkt[64];
  size_t n = ip_pkt(pkt, src, dst, IPPROTO_UDP_, u, sizeof u);
  ustcp_input(r->s, pkt, n, r->now);
}

static void send_echo(struct rp *r, uint32_t src, uint32_t dst)
{
  uint8_t pkt[128];
  int n = icmp_packet_encode(src, dst, 3, 0, ICMP_ECHO_REQUEST, 0, 0x00010001u,
                             (const uint8_t *)"ping", 4, pkt, sizeof pkt);
  CHECK(n > 0);
  if (n > 0) ustcp_input(r->s, pkt, (size_t)n, r->now);
}

static void send_syn(struct rp *r, uint32_t src, uint32_t dst, uint16_t dport)
{
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = 40000;
  h.dst_port = dport;
  h.seq = 12345;
  h.flags = TCP_SYN;
  h.window = 65535;
  uint8_t pkt[128];
  int n = tcp_packet_encode(&h, NULL, 0, src, dst, 1, pkt, sizeof pkt);
  CHECK(n > 0);
  if (n > 0) ustcp_input(r->s, pkt, (size_t)n, r->now);
}

/* The control: a real peer gets a SYN-ACK, an RST, a port unreachable and an
 * echo reply, so the test below can see an answer when there is one. */
static void control_answers(void)
{
  struct rp r;
  rp_init(&r, NULL, 1);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  send_syn(&r, RP_PEER_IP, RP_LOCAL_IP, 80);
  send_syn(&r, RP_PEER_IP, RP_LOCAL_IP, 81);
  send_udp(&r, RP_PEER_IP, RP_LOCAL_IP);
  send_echo(&r, RP_PEER_IP, RP_LOCAL_IP);
  CHECK_EQ(r.sent_total, 4);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.ip_martian_src, 0);
  rp_free(&r);
}

static void martian_sources(void)
{
  struct rp r;
  rp_init(&r, NULL, 2);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  for (size_t i = 0; i < NMARTIANS; i++) {
    uint64_t sent = r.sent_total;
    struct ustcp_stats before, after;
    ustcp_get_stats(r.s, &before);
    send_syn(&r, martians[i], RP_LOCAL_IP, 80);    /* to a listener */
    send_syn(&r, martians[i], RP_LOCAL_IP, 81);    /* to a closed port: no RST */
    send_udp(&r, martians[i], RP_LOCAL_IP);        /* no port unreachable */
    send_echo(&r, martians[i], RP_LOCAL_IP);       /* no echo reply */
    ustcp_get_stats(r.s, &after);
    char a[16];
    if (r.sent_total != sent || after.ip_martian_src - before.ip_martian_src != 4)
      fprintf(stderr, "martian source %s answered or not counted\n", ipv4_str(martians[i], a, sizeof a));
    CHECK_EQ(r.sent_total, sent);
    CHECK_EQ(after.ip_martian_src - before.ip_martian_src, 4);
    CHECK_EQ(after.tcp_in, before.tcp_in);          /* dropped before TCP */
    CHECK_EQ(after.icmp_in, before.icmp_in);        /* and before ICMP */
  }
  struct ustcp_sock_row rows[4];
  CHECK_EQ(ustcp_sock_table(r.s, rows, 4), 1);     /* no half-open entry */
  rp_advance(&r, 30 * USTCP_SEC);
  CHECK_EQ(r.sent_total, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* Destinations that are not our unicast address: broadcast, multicast, another
 * host, 0.0.0.0. Counted as not for us; nothing answers. */
static void not_for_us(void)
{
  static const uint32_t dsts[] = {0xffffffffu, 0xe0000001u, 0xc00002ffu, 0xc0000203u, 0};
  struct rp r;
  rp_init(&r, NULL, 3);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  for (size_t i = 0; i < sizeof dsts / sizeof dsts[0]; i++) {
    struct ustcp_stats before, after;
    ustcp_get_stats(r.s, &before);
    send_syn(&r, RP_PEER_IP, dsts[i], 80);
    send_udp(&r, RP_PEER_IP, dsts[i]);
    send_echo(&r, RP_PEER_IP, dsts[i]);
    ustcp_get_stats(r.s, &after);
    CHECK_EQ(after.ip_not_for_us - before.ip_not_for_us, 3);
  }
  CHECK_EQ(r.sent_total, 0);
  rp_free(&r);
}

/* connect() to a non-unicast address fails at once (Linux: ENETUNREACH from
 * tcp_v4_connect for a broadcast/multicast route, and no route to the rest on
 * a stack that has no loopback device); nothing is sent, and the socket can
 * still connect to a real peer afterwards. */
static void connect_refused(void)
{
  static const uint32_t dsts[] = {0xffffffffu, 0xe0000001u, 0xefffffffu, 0xf0000001u,
                                  0x7f000001u, 0x00010203u};
  struct rp r;
  rp_init(&r, NULL, 4);
  int fd = ustcp_socket(r.s);
  CHECK(fd >= 0);
  for (size_t i = 0; i < sizeof dsts / sizeof dsts[0]; i++) {
    struct ustcp_addr a = {dsts[i], 80};
    CHECK_EQ(ustcp_connect(r.s, fd, &a), -ENETUNREACH);
    CHECK_EQ(rp_state(&r, fd), USTCP_CLOSED);
  }
  rp_advance(&r, 10 * USTCP_SEC);
  CHECK_EQ(r.sent_total, 0);
  struct ustcp_addr ok = {RP_PEER_IP, 80};
  CHECK_EQ(ustcp_connect(r.s, fd, &ok), -EINPROGRESS);
  CHECK_EQ(r.sent_total, 1);                        /* the SYN */
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* RFC 1122 3.2.2: no ICMP error about an ICMP error, and none about a datagram
 * sent to a broadcast or multicast address (here: UDP to one, already dropped
 * as not for us) -- the error about an ICMP error is the case that loops. */
static void no_error_about_error(void)
{
  struct rp r;
  rp_init(&r, NULL, 5);
  uint8_t quoted[28];
  send_udp(&r, RP_PEER_IP, RP_LOCAL_IP);            /* draws one port unreachable */
  CHECK_EQ(r.sent_total, 1);
  memcpy(quoted, r.q[r.head].data, sizeof quoted);
  uint8_t pkt[128];
  /* A port unreachable for a packet it pretends we sent: no answer. */
  int n = icmp_packet_encode(RP_PEER_IP, RP_LOCAL_IP, 4, 0, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH,
                             0, quoted, sizeof quoted, pkt, sizeof pkt);
  CHECK(n > 0);
  if (n > 0) ustcp_input(r.s, pkt, (size_t)n, r.now);
  CHECK_EQ(r.sent_total, 1);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.icmp_err_unmatched, 1);   /* quotes no connection of ours: counted */
  /* A flood of datagrams to closed ports: the ICMP errors stop at the burst
   * (Linux's icmp_msgs_burst, 50), and every one not sent is counted. */
  for (int i = 0; i < 100; i++) send_udp(&r, RP_PEER_IP, RP_LOCAL_IP);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(r.sent_total, 50);
  CHECK_EQ(st.icmp_out_ratelimited, 51);
  rp_free(&r);
}

int main(void)
{
  RUN(control_answers);
  RUN(martian_sources);
  RUN(not_for_us);
  RUN(connect_refused);
  RUN(no_error_about_error);
  return check_report();
}
