/*
 * mxsurvey-hsloop: the two baselines bench/scan prints next to the scanner's CPU per
 * handshake. Figures only, nothing asserted.
 *
 *   mxsurvey-hsloop loop --port P [--ca-file CA] [--verify] [--groups LIST] TARGETS
 *       A minimal blocking client: for each "ip,mx" line, connect, read the greeting,
 *       EHLO, STARTTLS, then SSL_connect with OpenSSL's default client settings (one
 *       SSL_CTX, SNI set to mx), close. --verify loads CA and adds what the scanner
 *       records as verdicts: the chain verification OpenSSL does in the handshake and
 *       X509_check_host on the leaf. --groups sets the supported groups (and so the key
 *       shares: OpenSSL 3.5's default sends X25519MLKEM768 and X25519, 3.0's X25519
 *       only). Prints user+sys CPU per completed handshake and the library's version.
 *
 *   mxsurvey-hsloop floor [--ecdsa N] [--rsa N] [--iterations I]
 *       The crypto a client cannot avoid, timed in this process: per TLS 1.3 ECDSA host
 *       one X25519 key generation and derivation and two P-256 ECDSA verifications (the
 *       CertificateVerify and the leaf's signature by the CA); per TLS 1.2 ECDHE-RSA host
 *       the same key exchange, one RSA-2048 PSS verification (ServerKeyExchange) and one
 *       P-256 ECDSA verification (the leaf by the CA). Prints each operation's CPU and
 *       the weighted floor per handshake for the given mix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Read until a final reply line ("NNN " ... CRLF) ends the buffer; 0 when it came. */
static int read_reply(int fd)
{
	char buf[4096];
	size_t n = 0;

	for (;;) {
		ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n') {
			char *last = buf + n - 2;
			while (last > buf && last[-1] != '\n')
				last--;
			if (strlen(last) >= 4 && last[3] == ' ')
				return last[0] == '2' ? 0 : -1;
		}
		if (n >= sizeof(buf) - 1)
			return -1;
	}
}

static int send_str(int fd, const char *s)
{
	return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s) ? 0 : -1;
}

static int one(SSL_CTX *ctx, const char *ip, const char *mx, int port, int verify)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
	SSL *ssl = NULL;

	if (fd < 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || read_reply(fd) != 0 ||
	    send_str(fd, "EHLO bench.mxsurvey.test\r\n") != 0 || read_reply(fd) != 0 ||
	    send_str(fd, "STARTTLS\r\n") != 0 || read_reply(fd) != 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		goto out;
	SSL_set_tlsext_host_name(ssl, mx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		goto out;
	ok = 1;
	if (verify) {
		X509 *leaf = SSL_get0_peer_certificate(ssl);
		volatile int v = SSL_get_verify_result(ssl) == X509_V_OK &&
				 leaf != NULL && X509_check_host(leaf, mx, 0, 0, NULL) == 1;
		(void)v;
	}
out:
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
	return ok;
}

static int cmd_loop(int argc, char **argv)
{
	const char *ca = NULL, *file = NULL, *groups = NULL;
	int port = 0, verify = 0, done = 0, tried = 0;
	char line[512];
	FILE *f;
	SSL_CTX *ctx;
	double c0;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc)
			ca = argv[++i];
		else if (strcmp(argv[i], "--verify") == 0)
			verify = 1;
		else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc)
			groups = argv[++i];
		else
			file = argv[i];
	}
	if (port <= 0 || file == NULL || (f = fopen(file, "r")) == NULL) {
		fprintf(stderr, "usage: mxsurvey-hsloop loop --port P [--ca-file CA] [--verify] [--groups LIST] TARGETS\n");
		return 2;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || (verify && (ca == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) ||
	    (groups != NULL && SSL_CTX_set1_groups_list(ctx, groups) != 1)) {
		fprintf(stderr, "cannot set up the SSL_CTX\n");
		return 1;
	}
	c0 = cpu_now();
	while (fgets(line, sizeof(line), f) != NULL) {
		char *comma = strchr(line, ','), *nl;
		if (comma == NULL)
			continue;
		*comma = '\0';
		if ((nl = strchr(comma + 1, '\n')) != NULL)
			*nl = '\0';
		tried++;
		done += one(ctx, line, comma + 1, port, verify);
	}
	fclose(f);
	c0 = cpu_now() - c0;
	printf("{\"tried\":%d,\"handshakes\":%d,\"cpu_s\":%.4f,\"ms_per_handshake\":%.4f,\"openssl\":\"%s\"}\n",
	       tried, done, c0, done ? 1000 * c0 / done : 0.0, OpenSSL_version(OPENSSL_VERSION));
	SSL_CTX_free(ctx);
	return 0;
}

/* ---- the crypto floor ---- */

static EVP_PKEY *keygen(const char *alg, const char *param)
{
	EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
	EVP_PKEY *p = NULL;

	if (k == NULL || EVP_PKEY_keygen_init(k) <= 0)
		goto out;
	if (param != NULL && strcmp(alg, "EC") == 0 && EVP_PKEY_CTX_set_group_name(k, param) <= 0)
		goto out;
	if (param != NULL && strcmp(alg, "RSA") == 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(k, atoi(param)) <= 0)
		goto out;
	EVP_PKEY_keygen(k, &p);
out:
	EVP_PKEY_CTX_free(k);
	return p;
}

/* One X25519 exchange as a client does it: generate a key, derive with the peer's. */
static void x25519_once(EVP_PKEY *peer)
{
	EVP_PKEY *mine = keygen("X25519", NULL);
	EVP_PKEY_CTX *d = EVP_PKEY_CTX_new(mine, NULL);
	unsigned char secret[64];
	size_t len = sizeof(secret);

	if (d == NULL || EVP_PKEY_derive_init(d) <= 0 || EVP_PKEY_derive_set_peer(d, peer) <= 0 ||
	    EVP_PKEY_derive(d, secret, &len) <= 0)
		fprintf(stderr, "x25519 failed\n");
	EVP_PKEY_CTX_free(d);
	EVP_PKEY_free(mine);
}

static void verify_once(EVP_PKEY *key, const unsigned char *sig, size_t siglen, int pss)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	static const unsigned char msg[] = "a transcript hash stands here";

	if (EVP_DigestVerifyInit(m, &pc, EVP_sha256(), NULL, key) <= 0 ||
	    (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0 ||
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) <= 0)) ||
	    EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) != 1)
		fprintf(stderr, "verify failed\n");
	EVP_MD_CTX_free(m);
}

static size_t sign_once(EVP_PKEY *key, unsigned char *sig, size_t cap, int pss)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	static const unsigned char msg[] = "a transcript hash stands here";
	size_t len = cap;

	if (EVP_DigestSignInit(m, &pc, EVP_sha256(), NULL, key) <= 0 ||
	    (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0 ||
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) <= 0)) ||
	    EVP_DigestSign(m, sig, &len, msg, sizeof(msg)) != 1)
		len = 0;
	EVP_MD_CTX_free(m);
	return len;
}

static int cmd_floor(int argc, char **argv)
{
	int necdsa = 1152, nrsa = 848, iters = 2000;
	EVP_PKEY *peer = keygen("X25519", NULL), *ec = keygen("EC", "P-256"), *rsa = keygen("RSA", "2048");
	unsigned char ecsig[256], rsasig[512];
	size_t eclen, rsalen;
	double c, x, e, r, floor_ecdsa, floor_rsa;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--ecdsa") == 0 && i + 1 < argc)
			necdsa = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rsa") == 0 && i + 1 < argc)
			nrsa = atoi(argv[++i]);
		else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
			iters = atoi(argv[++i]);
	}
	if (peer == NULL || ec == NULL || rsa == NULL || iters <= 0 || necdsa + nrsa <= 0) {
		fprintf(stderr, "cannot set up the floor\n");
		return 1;
	}
	eclen = sign_once(ec, ecsig, sizeof(ecsig), 0);
	rsalen = sign_once(rsa, rsasig, sizeof(rsasig), 1);
	/* warm up the provider caches, as a running scanner has them */
	for (int i = 0; i < 50; i++) {
		x25519_once(peer);
		verify_once(ec, ecsig, eclen, 0);
		verify_once(rsa, rsasig, rsalen, 1);
	}
	c = cpu_now();
	for (int i = 0; i < iters; i++)
		x25519_once(peer);
	x = (cpu_now() - c) / iters;
	c = cpu_now();
	for (int i = 0; i < iters; i++)
		verify_once(ec, ecsig, eclen, 0);
	e = (cpu_now() - c) / iters;
	c = cpu_now();
	for (int i = 0; i < iters; i++)
		verify_once(rsa, rsasig, rsalen, 1);
	r = (cpu_now() - c) / iters;
	floor_ecdsa = x + 2 * e;
	floor_rsa = x + r + e;
	printf("{\"x25519_ms\":%.4f,\"ecdsa_p256_verify_ms\":%.4f,\"rsa2048_pss_verify_ms\":%.4f,"
	       "\"tls13_ecdsa_ms\":%.4f,\"tls12_rsa_ms\":%.4f,\"mix_ms\":%.4f}\n",
	       1000 * x, 1000 * e, 1000 * r, 1000 * floor_ecdsa, 1000 * floor_rsa,
	       1000 * (necdsa * floor_ecdsa + nrsa * floor_rsa) / (necdsa + nrsa));
	EVP_PKEY_free(peer);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "loop") == 0)
		return cmd_loop(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "floor") == 0)
		return cmd_floor(argc, argv);
	fprintf(stderr, "usage: mxsurvey-hsloop loop|floor ...\n");
	return 2;
}
