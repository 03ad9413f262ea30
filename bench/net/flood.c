/* Host → guest load for bench/net: sends argv[2] 60-byte broadcast frames of ethertype 0x88b5
 * out of interface argv[1] (the TAP device's host side, so the VMM reads them) through a
 * packet socket, as fast as the socket takes them. What does not fit the TAP's queue the
 * kernel drops (the TAP's tx_dropped counter). */
#include <stdlib.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: flood IFNAME COUNT\n");
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
  unsigned long n = strtoul(argv[2], 0, 10);
  for (unsigned long i = 0; i < n; i++) {
    memcpy(f + 14, &i, sizeof i);
    if (sendto(s, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) < 0) {
      perror("sendto");
      return 1;
    }
  }
  return 0;
}
