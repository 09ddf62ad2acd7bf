/* _csrc/elfsym.c: publishes the CPython-level module pylibbpf._elfsym */
int pylibbpf_elfsym_install(void);
