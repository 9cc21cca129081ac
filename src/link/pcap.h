/* src/link/pcap: write classic pcap files; read classic pcap and pcapng.
 * The writer uses LINKTYPE_RAW (101): each record is one IPv4 packet, which tshark
 * and Wireshark decode directly. The reader accepts what tcpdump/tshark write for
 * the links we meet: LINKTYPE_RAW (101), LINKTYPE_IPV4 (228), Ethernet (1),
 * Linux cooked SLL (113) and SLL2 (276), BSD loopback (0), in classic pcap (both
 * byte orders, microsecond/nanosecond magic) or pcapng (tshark's default; Enhanced
 * and Simple Packet Blocks, per-interface link type and timestamp resolution);
 * it yields the IPv4 packet of each record. */
#ifndef USTCP_PCAP_H
#define USTCP_PCAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PCAP_LINKTYPE_NULL 0
#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_LINKTYPE_RAW 101
#define PCAP_LINKTYPE_LINUX_SLL 113
#define PCAP_LINKTYPE_IPV4 228
#define PCAP_LINKTYPE_IPV6 229
#define PCAP_LINKTYPE_LINUX_SLL2 276

struct pcap_writer;
/* Opens path for writing (truncates). Returns NULL with errno set on failure. */
struct pcap_writer *pcap_writer_open(const char *path);
/* Wraps an already open FILE (not closed by pcap_writer_close when owned = 0). */
struct pcap_writer *pcap_writer_from_file(FILE *f, int owned);
/* Writes one IPv4 packet with a timestamp in microseconds (virtual or real). Returns
 * 0 or -errno. */
int pcap_writer_write(struct pcap_writer *w, uint64_t ts_us, const uint8_t *pkt, size_t len);
/* Flushes and closes; returns 0 or -errno. */
int pcap_writer_close(struct pcap_writer *w);

struct pcap_reader;
/* Opens a pcap file. Returns NULL and a one-line reason in err on failure (not a
 * pcap file, unsupported link type, I/O error). */
struct pcap_reader *pcap_reader_open(const char *path, char *err, size_t errcap);
/* Reads the next record that carries an IPv4 packet; skips others (ARP, IPv6).
 * Returns 1 with *pkt and *len (valid until the next call) and *ts_us, 0 at end of
 * file, or -1 on a truncated or corrupt record (reason in err). */
int pcap_reader_next(struct pcap_reader *r, uint64_t *ts_us, const uint8_t **pkt,
                     size_t *len, char *err, size_t errcap);
int pcap_reader_linktype(const struct pcap_reader *r);
/* Issue 16: from now on pcap_reader_next yields IPv6 packets as well (RAW with
 * version 6, EtherType 0x86dd, SLL/SLL2 protocol 0x86dd, DLT_NULL's AF_INET6
 * values), trimmed to their Payload Length; the caller tells the families apart
 * by the version nibble. Off by default (the readers that know IPv4 only). */
void pcap_reader_want_ipv6(struct pcap_reader *r, bool on);
void pcap_reader_close(struct pcap_reader *r);
#endif
