/* Whole-stack invariant checks (see stack_check.h). Only tests call these. */
#include <stdio.h>
#include <stdlib.h>
#include "stack/stack_check.h"

struct walk {
  uint64_t count, mem, timers, ports_held, ports_shared;
  uint64_t a6_refs;               /* IPv6 handles the blocks hold (issue 16) */
};

static const char *visit(struct ustcp_stack *s, struct tcb *t, struct walk *w, char *buf, size_t cap)
{
  const char *r = tcp_check_tcb(&s->eng, t, buf, cap);
  if (r) return r;
  w->count++;
  w->mem += tcp_tcb_mem(t);
  if (t->timer.at_us) w->timers++;
  if (t->port_held) {
    w->ports_held++;
    if (!s->port_refs[t->local.port] || s->port_shared_refs[t->local.port] > s->port_refs[t->local.port]) {
      snprintf(buf, cap, "conn %llu holds port %u: %u references, %u shared",
               (unsigned long long)t->conn_id, t->local.port, s->port_refs[t->local.port],
               s->port_shared_refs[t->local.port]);
      return buf;
    }
  }
  if (t->port_held && t->port_shared) w->ports_shared++;
  const struct tcp_ep *eps[2] = {&t->local, &t->remote};
  for (int k = 0; k < 2; k++) {
    if (!eps[k]->v6 || !eps[k]->ip) continue;
    if (eps[k]->ip > s->eng.a6.cap || !s->eng.a6.v[eps[k]->ip - 1].refs) {
      snprintf(buf, cap, "conn %llu holds IPv6 handle %u, which is not interned",
               (unsigned long long)t->conn_id, eps[k]->ip);
      return buf;
    }
    w->a6_refs++;
  }
  return NULL;
}

/* The port tables have 65536 entries each: summed without ASan's per-load
 * checks (which keep the loop from being vectorised), since the deep check runs
 * after every fuzz input and this sum was most of its cost. The arrays are
 * allocated whole with the stack, so no access here can be out of bounds. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address")))
#endif
static void sum_ports(const uint32_t *refs, const uint32_t *shared, uint64_t *refs_sum,
                      uint64_t *shared_sum, bool *shared_exceeds)
{
  uint64_t r = 0, sh = 0;
  bool bad = false;
  for (uint32_t p = 0; p < 65536; p++) {
    r += refs[p];
    sh += shared[p];
    bad |= shared[p] > refs[p];
  }
  *refs_sum = r;
  *shared_sum = sh;
  *shared_exceeds = bad;
}

const char *stack_check(struct ustcp_stack *s, bool deep, char *buf, size_t cap)
{
  struct walk w = {0, 0, 0, 0, 0, 0};
  const char *r;
  /* The walk stops once it has seen as many blocks as the table counts (the
   * engine's count is checked against the total below, so a block past that
   * point is still caught as a mismatch). */
  size_t seen = 0;
  for (size_t i = 0; i < s->conns.nbuckets && seen < s->conns.count; i++)
    for (struct tcb *t = s->conns.buckets[i]; t; t = t->hash_next, seen++) {
      if (!t->in_hash || t->lst) {
        snprintf(buf, cap, "conn %llu in the connection table with in_hash %d, lst %p",
                 (unsigned long long)t->conn_id, t->in_hash, (void *)t->lst);
        return buf;
      }
      if (stack_lookup_af(s, t->remote.v6, t->local.ip, t->local.port, t->remote.ip, t->remote.port) != t) {
        snprintf(buf, cap, "conn %llu (%s) not found by its 4-tuple (port %u -> %u): duplicate or misplaced",
                 (unsigned long long)t->conn_id, ustcp_state_name(t->state), t->local.port, t->remote.port);
        return buf;
      }
      if (t->fd >= 0 && sock_debug_tcb(s, t->fd, NULL) != t) {
        snprintf(buf, cap, "conn %llu claims descriptor %d, which is not it",
                 (unsigned long long)t->conn_id, t->fd);
        return buf;
      }
      if ((r = visit(s, t, &w, buf, cap))) return r;
    }
  for (size_t i = 0; i < s->listeners.nbuckets; i++)
    for (struct tcb *t = s->listeners.buckets[i]; t; t = t->hash_next) {
      if (!t->in_hash || !t->lst || t->state != USTCP_LISTEN) {
        snprintf(buf, cap, "conn %llu in the listener table in %s",
                 (unsigned long long)t->conn_id, ustcp_state_name(t->state));
        return buf;
      }
      if ((r = visit(s, t, &w, buf, cap))) return r;
    }
  uint32_t fd_cap = 0;
  sock_debug_tcb(s, 0, &fd_cap);
  for (uint32_t fd = 0; fd < fd_cap; fd++) {
    struct tcb *t = sock_debug_tcb(s, (int)fd, NULL);
    if (!t) continue;
    if (t->fd != (int)fd) {
      snprintf(buf, cap, "descriptor %u holds conn %llu whose fd is %d", fd,
               (unsigned long long)t->conn_id, t->fd);
      return buf;
    }
    if (!t->in_hash && (r = visit(s, t, &w, buf, cap))) return r;
  }
  if (w.count != s->eng.conns) {
    snprintf(buf, cap, "%llu control blocks reachable, engine counts %llu (leak or double free)",
             (unsigned long long)w.count, (unsigned long long)s->eng.conns);
    return buf;
  }
  if (w.mem != s->eng.mem_bytes) {
    snprintf(buf, cap, "reachable blocks own %llu bytes, allocator counts %llu (leak)",
             (unsigned long long)w.mem, (unsigned long long)s->eng.mem_bytes);
    return buf;
  }
  if (w.timers != s->eng.timers.n) {
    snprintf(buf, cap, "%llu blocks have a timer armed, heap holds %zu",
             (unsigned long long)w.timers, s->eng.timers.n);
    return buf;
  }
  if ((r = tcp_check_timers(&s->eng, buf, cap))) return r;
  /* The interned IPv6 addresses: every reference is a block's or the stack's
   * own address (between events no packet holds one), and the in-use count
   * matches (tcp_addr6.c). */
  uint64_t a6_sum = 0, a6_used = 0;
  for (uint32_t h = 1; h <= s->eng.a6.cap; h++) {
    a6_sum += s->eng.a6.v[h - 1].refs;
    if (s->eng.a6.v[h - 1].refs) a6_used++;
  }
  if (a6_sum != w.a6_refs + (s->has_ip6 ? 1u : 0u) || a6_used != s->eng.a6.used) {
    snprintf(buf, cap, "IPv6 table: %llu references in %llu entries (counted %u), blocks hold %llu",
             (unsigned long long)a6_sum, (unsigned long long)a6_used, s->eng.a6.used,
             (unsigned long long)w.a6_refs);
    return buf;
  }
  if (s->port_refs_total != w.ports_held || s->port_shared_total != w.ports_shared) {
    snprintf(buf, cap, "%llu port references (%llu shared), %llu blocks hold a port (%llu shared)",
             (unsigned long long)s->port_refs_total, (unsigned long long)s->port_shared_total,
             (unsigned long long)w.ports_held, (unsigned long long)w.ports_shared);
    return buf;
  }
  if (deep) {
    uint64_t refs, shared;
    bool exceeds;
    sum_ports(s->port_refs, s->port_shared_refs, &refs, &shared, &exceeds);
    for (uint32_t p = 0; exceeds && p < 65536; p++)
      if (s->port_shared_refs[p] > s->port_refs[p]) {
        snprintf(buf, cap, "port %u: %u shared references of %u", p, s->port_shared_refs[p],
                 s->port_refs[p]);
        return buf;
      }
    if (shared != s->port_shared_total) {
      snprintf(buf, cap, "the shared-port table sums to %llu, its total says %llu",
               (unsigned long long)shared, (unsigned long long)s->port_shared_total);
      return buf;
    }
    if (refs != s->port_refs_total) {
      snprintf(buf, cap, "the port table sums to %llu, its total says %llu",
               (unsigned long long)refs, (unsigned long long)s->port_refs_total);
      return buf;
    }
  }
  return NULL;
}
