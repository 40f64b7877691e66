/*
 * csv_gen.c - write a contact CSV for import benchmarks and tests.
 *
 * SYNOPSIS
 *   csv-gen ROWS [SEED] > file.csv
 *
 * DESCRIPTION
 *   A header "email,first_name,last_name,city,country,plan" and ROWS rows
 *   with unique addresses user<N>@<domain> spread over 2,000 domains in
 *   random order, and five merge fields of plausible length (about 90
 *   bytes a row), a few with quotes and commas.  The same SEED gives the
 *   same file.  Written through one large stdio buffer: about 1,000,000
 *   rows in well under a second.
 *
 * EXIT STATUS
 *   0, 64 usage, 74 write error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const firsts[] = {
    "Ann", "Bob", "Chloé", "David", "Eve", "François", "Grace", "Hiro",
    "Ines", "Jonas", "Kai", "Lena", "Mateo", "Noor", "Olga", "Pavel",
};
static const char *const lasts[] = {
    "Smith", "O'Neil", "García", "Müller", "Rossi", "Dubois", "Tanaka",
    "Kowalski", "\"\"\"The Boss\"\" Lee\"", "Nguyen", "Silva", "Jensen",
};
static const char *const cities[] = {
    "Paris", "\"Washington, D.C.\"", "Berlin", "São Paulo", "Tokyo",
    "Lagos", "Oslo", "Lima", "Perth", "Quebec",
};
static const char *const countries[] = { "FR", "US", "DE", "BR", "JP", "NG",
                                         "NO", "PE", "AU", "CA" };
static const char *const plans[] = { "free", "pro", "team", "enterprise" };

#define PICK(a, r) (a)[(r) % (sizeof(a) / sizeof((a)[0]))]

/* xorshift64* */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Greatest common divisor. */
static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Parse a decimal count; 0 on error. */
static unsigned long long count(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *s && !*end ? v : 0;
}

int main(int argc, char **argv)
{
    unsigned long long rows = argc > 1 ? count(argv[1]) : 0;
    uint64_t seed = argc > 2 ? count(argv[2]) : 1;
    static char buf[1 << 20];
    if (argc < 2 || argc > 3 || (rows == 0 && strcmp(argv[1], "0"))) {
        fprintf(stderr, "usage: csv-gen ROWS [SEED] > file.csv\n");
        return 64;
    }
    if (!seed)
        seed = 1;
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    fputs("email,first_name,last_name,city,country,plan\n", stdout);
    /* a multiplier coprime with rows permutes the user numbers */
    uint64_t mul = 2654435761u, off = next(&seed) % (rows ? rows : 1);
    while (rows && gcd(mul, rows) != 1)
        mul++;
    for (unsigned long long i = 0; i < rows; i++) {
        uint64_t r = next(&seed);
        unsigned long long user = (i * mul + off) % rows;
        printf("user%llu@d%u.example,%s,%s,%s,%s,%s\n", user,
               (unsigned)(r % 2000), PICK(firsts, r >> 11),
               PICK(lasts, r >> 17), PICK(cities, r >> 23),
               PICK(countries, r >> 29), PICK(plans, r >> 37));
    }
    if (fflush(stdout) || ferror(stdout)) {
        perror("csv-gen");
        return 74;
    }
    return 0;
}
