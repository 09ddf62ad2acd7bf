/* _csrc/fast.c: publishes the CPython-level module pylibbpf._fast */
int pylibbpf_fast_install(void);
