/* _csrc/elfsym.c: publishes the CPython-level module pylibbpf._elfsym */
int pylibbpf_elfsym_install(void);
int pylibbpf_cached_offsets(const char *entry, const char *path, const char *rules,
                            const char *dirs, const char *names, size_t names_len,
                            size_t n, unsigned long *out);
