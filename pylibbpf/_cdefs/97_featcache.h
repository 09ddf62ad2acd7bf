/* _csrc/featcache.c: libbpf's positive feature probes remembered per boot */
int pylibbpf_features_prime(const char *path);
int pylibbpf_features_learned(void);
int pylibbpf_features_export(char *buf, size_t n);
int pylibbpf_features_asked(void);
int pylibbpf_object_load(struct bpf_object *obj, int prepare, const char *features);
/* _csrc/verdicts.c: the open's pre-check verdicts remembered per file */
int pylibbpf_verdicts_prime(const char *path);
int pylibbpf_verdicts_learned(void);
int pylibbpf_verdicts_export(char *buf, size_t n);
int pylibbpf_verdicts_checked(void);
