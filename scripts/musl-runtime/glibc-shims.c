/*
 * The glibc-only symbols that Debian's static libstdc++/libgcc objects refer
 * to, supplied for musl, so that a musl libstdc++.so.6 can be linked from
 * Debian's own libstdc++.a (see build.sh). Only what the musl Bun binary
 * needs at load time; none of these paths matter to cas-migrator.
 */
#include <locale.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

/* libstdc++ reads this to skip atomics in single-threaded programs; 0 is always safe. */
char __libc_single_threaded = 0;

/* libgcc's unwinder falls back to dl_iterate_phdr when this fails. */
int _dl_find_object(void *pc, void *result) {
  (void)pc;
  (void)result;
  return -1;
}

/* thread_local destructors: not registered (the process exits instead). */
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) {
  (void)dtor;
  (void)obj;
  (void)dso;
  return 0;
}

unsigned int arc4random(void) {
  unsigned int value = 0;
  if (getrandom(&value, sizeof value, 0) != sizeof value) abort();
  return value;
}

size_t __strftime_l(char *s, size_t max, const char *format, const struct tm *tm, locale_t locale) {
  return strftime_l(s, max, format, tm, locale);
}
