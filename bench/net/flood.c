/* Host → guest load for bench/net: sends 60-byte broadcast frames of ethertype 0x88b5 out of
 * interface argv[1] (the TAP device's host side, so the VMM reads them) through a packet
 * socket, as fast as the socket takes them, until killed. A full TAP queue makes send()
 * block or the kernel drop; the drops are the TAP's tx_dropped counter. */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: flood IFNAME\n");
    return 2;
  }
  int s = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
  if (s < 0) {
    perror("socket");
    return 1;
  }
  struct sockaddr_ll to = {0};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = (int)if_nametoindex(argv[1]);
  to.sll_halen = 6;
  memset(to.sll_addr, 0xff, 6);
  if (!to.sll_ifindex) {
    perror(argv[1]);
    return 1;
  }
  unsigned char f[60] = {0};
  memset(f, 0xff, 6);
  f[6] = 0x02;
  f[12] = 0x88;
  f[13] = 0xb5;
  for (unsigned long i = 0;; i++) {
    memcpy(f + 14, &i, sizeof i);
    if (sendto(s, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) < 0) perror("sendto");
  }
}
