/* shim (events.c): BTF type walking for typed decoding */
struct pylibbpf_btf_info {
    __u32 kind;
    __u32 vlen;
    __u32 kflag;
    __u32 size;
    __u32 type;
    const char *name;
    __u32 int_encoding, int_bits, int_offset;
    __u32 elem_type, index_type, nelems;
    __u32 linkage;
};
struct pylibbpf_btf_member {
    const char *name;
    __u32 type;
    __u32 bit_offset;
    __u32 bitfield_size;
    __s64 value;
    __u64 uvalue;
    __u32 offset, size;
};
int pylibbpf_btf_info(const struct btf *btf, __u32 id, struct pylibbpf_btf_info *out);
int pylibbpf_btf_member(const struct btf *btf, __u32 id, __u32 idx, struct pylibbpf_btf_member *out);
struct btf *btf__load_from_kernel_by_id(__u32 id);
