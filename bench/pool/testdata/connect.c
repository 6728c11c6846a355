/* connect: the benchmarks' payload. With IP PORT it connects to IP:PORT
 * over TCP (retrying for up to ~2 s), writes one byte to stdout once
 * connected and exits 0; without arguments it writes the byte at once.
 * Built static so that its own start-up costs next to nothing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return write(1, "x", 1) == 1 ? 0 : 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
		return 2;
	for (int i = 0; i < 4000; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			return 3;
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
			return write(1, "x", 1) == 1 ? 0 : 4;
		close(s);
		usleep(500);
	}
	return 5;
}
