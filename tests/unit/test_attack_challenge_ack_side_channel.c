/* Issue 10 point 2: the challenge-ACK rate limit is no side channel
 * (CVE-2016-5696, "Off-Path TCP Exploits", Cao et al. 2016).
 *
 * The attack: an off-path attacker holds its own connection A to the server
 * and wants to learn whether a guessed RST (spoofed from the victim's address)
 * fell inside the window of the victim's connection V. In the window, V sends
 * a challenge ACK (RFC 5961 §3.2), to the victim, which the attacker cannot
 * see; but with ONE stack-wide budget of challenge ACKs per second, that ACK
 * is one fewer left for A. So, in the same second, the attacker sends as many
 * in-window RSTs on A as the budget holds and counts A's challenge ACKs: one
 * short means the guess was in V's window.
 *
 * The proof: the experiment runs twice with the same seed (so everything else,
 * ISNs and any random budget included, is identical), once with the spoofed
 * RST inside V's window and once outside; the attacker's count of challenge
 * ACKs on A must be the same. With the old per-stack budget of 1000 a second
 * it was 999 against 1000. Also: the spoofed RST never resets V, and A draws
 * at most one challenge ACK per invalid_ratelimit_us (500 ms, Linux's
 * tcp_invalid_ratelimit), however many RSTs it sends. */
#include "check.h"
#include "rawpeer.h"

#define VICTIM_IP 0xc0000203u   /* 192.0.2.3 */
enum { ROUNDS = 5, RSTS_PER_ROUND = 1500 };

struct outcome {
  uint64_t attacker_acks;   /* challenge ACKs the attacker saw on its own connection */
  int victim_state;
  uint64_t victim_acks;     /* what the victim got (the attacker cannot see these) */
};

static struct outcome experiment(const struct ustcp_config *cfg, uint64_t seed, bool spoof_in_window)
{
  struct rp r;
  rp_init(&r, cfg, seed);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn a, v;
  int vfd = rp_handshake_in(&r, &v, l, VICTIM_IP, 40000, 80, 0x11111111u, NULL);
  int afd = rp_handshake_in(&r, &a, l, RP_PEER_IP, 50000, 80, 0x22222222u, NULL);
  CHECK(vfd >= 0 && afd >= 0);
  struct outcome o = {0};
  for (int round = 0; round < ROUNDS; round++) {
    rp_advance(&r, USTCP_SEC);
    rp_clear(&r);
    /* The guess at V's window, spoofed from the victim's address. */
    uint32_t guess = spoof_in_window ? v.snd_nxt + 1000 : v.snd_nxt + 0x80000000u;
    rp_send_from(&r, VICTIM_IP, 40000, 80, guess, 0, TCP_RST, 0, NULL, NULL, 0);
    /* Then, within the same second, the attacker's probes on its own
     * connection: in-window, never exact. */
    for (int i = 0; i < RSTS_PER_ROUND; i++) {
      rp_send_from(&r, RP_PEER_IP, 50000, 80, a.snd_nxt + 1 + (uint32_t)(i % 500), 0, TCP_RST, 0,
                   NULL, NULL, 0);
      if (i % 100 == 99) r.now += 10 * USTCP_MSEC;   /* spread over 150 ms */
    }
    struct tcp_packet p;
    while (rp_next(&r, &p)) {
      if (p.ip.dst == RP_PEER_IP && p.tcp.dst_port == 50000 && (p.tcp.flags & TCP_ACK) &&
          !(p.tcp.flags & TCP_RST))
        o.attacker_acks++;
      if (p.ip.dst == VICTIM_IP && (p.tcp.flags & TCP_ACK)) o.victim_acks++;
    }
  }
  o.victim_state = rp_state(&r, vfd);
  CHECK_EQ(rp_state(&r, afd), USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
  return o;
}

static void run(const char *name, const struct ustcp_config *cfg)
{
  for (uint64_t seed = 1; seed <= 3; seed++) {
    struct outcome hit = experiment(cfg, seed, true);
    struct outcome miss = experiment(cfg, seed, false);
    printf("%s seed %llu: attacker sees %llu challenge ACKs when its spoofed RST hit the victim's "
           "window, %llu when it missed (victim got %llu vs %llu)\n", name,
           (unsigned long long)seed, (unsigned long long)hit.attacker_acks,
           (unsigned long long)miss.attacker_acks, (unsigned long long)hit.victim_acks,
           (unsigned long long)miss.victim_acks);
    /* The side channel: none. */
    CHECK_EQ(hit.attacker_acks, miss.attacker_acks);
    /* The test's premise: the hit did draw a challenge ACK to the victim. */
    CHECK(hit.victim_acks > miss.victim_acks);
    /* A guess at the window never resets. */
    CHECK_EQ(hit.victim_state, USTCP_ESTABLISHED);
    CHECK_EQ(miss.victim_state, USTCP_ESTABLISHED);
    /* Per connection: one challenge ACK per 500 ms at most (each round's
     * probes span 150 ms, rounds are a second apart). */
    CHECK(hit.attacker_acks >= 1);
    CHECK(hit.attacker_acks <= ROUNDS);
  }
}

/* The default: Linux 6.x, no stack-wide budget, per-connection limit only. */
static void no_side_channel_default(void) { run("default", NULL); }

/* A finite stack-wide budget (Linux 4.7's randomised one): one attacker
 * connection cannot exhaust it through the per-connection limiter, so the count
 * is the same too. (An attacker with hundreds of connections could; that is
 * why the default has no stack-wide budget, as Linux 6.x.) */
static void no_side_channel_finite_budget(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.challenge_ack_limit = 1000;
  run("limit 1000", &cfg);
}

int main(void)
{
  RUN(no_side_channel_default);
  RUN(no_side_channel_finite_budget);
  return check_report();
}
