int bpf_map__fd(const struct bpf_map *map);
const char *bpf_map__name(const struct bpf_map *map);
enum bpf_map_type bpf_map__type(const struct bpf_map *map);
int bpf_map__set_type(struct bpf_map *map, enum bpf_map_type type);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
__u32 bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, __u32 flags);
__u32 bpf_map__key_size(const struct bpf_map *map);
int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__value_size(const struct bpf_map *map);
int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
__u32 bpf_map__btf_key_type_id(const struct bpf_map *map);
__u32 bpf_map__btf_value_type_id(const struct bpf_map *map);
int bpf_map__set_initial_value(struct bpf_map *map, const void *data, size_t size);
void *bpf_map__initial_value(const struct bpf_map *map, size_t *psize);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
const char *bpf_map__pin_path(const struct bpf_map *map);
bool bpf_map__is_pinned(const struct bpf_map *map);
int bpf_map__pin(struct bpf_map *map, const char *path);
int bpf_map__unpin(struct bpf_map *map, const char *path);
int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate);
bool bpf_map__autocreate(const struct bpf_map *map);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
int bpf_map__set_inner_map_fd(struct bpf_map *map, int fd);
bool bpf_map__is_internal(const struct bpf_map *map);
__u64 bpf_map__map_extra(const struct bpf_map *map);
int bpf_map__set_map_extra(struct bpf_map *map, __u64 map_extra);

struct bpf_map_create_opts {
    size_t sz;
    __u32 btf_fd;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u32 btf_vmlinux_value_type_id;
    __u32 inner_map_fd;
    __u32 map_flags;
    __u64 map_extra;
    __u32 numa_node;
    __u32 map_ifindex;
    __u32 token_fd;
    ...;
};
int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size,
                   __u32 value_size, __u32 max_entries, const struct bpf_map_create_opts *opts);
int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, __u64 flags);
int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
int bpf_map_freeze(int fd);

struct bpf_map_info {
    __u32 type;
    __u32 id;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 map_flags;
    char name[16];
    __u32 ifindex;
    __u32 btf_id;
    __u32 btf_key_type_id;
    __u32 btf_value_type_id;
    __u64 map_extra;
    ...;
};
int bpf_map_get_info_by_fd(int map_fd, struct bpf_map_info *info, __u32 *info_len);
int bpf_map_get_fd_by_id(__u32 id);
int bpf_map_get_next_id(__u32 start_id, __u32 *next_id);

/* pinning of any BPF object */
int bpf_obj_pin(int fd, const char *pathname);
int bpf_obj_get(const char *pathname);
int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);
