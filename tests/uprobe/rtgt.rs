// Rust uprobe target: a legacy- or v0-mangled function (tests/test_elf.py).
#[inline(never)]
pub fn scale(x: i64) -> i64 {
    std::hint::black_box(x) * 3
}

fn main() {
    let n = std::env::args().count() as i64;
    println!("{}", scale(n));
}
