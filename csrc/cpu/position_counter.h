// Counting per bit position with Harley-Seal carry-save adders, for every vector width of the
// CPU kernels: one PositionCounter template over the width's primitives (LanesU32x8, Lanes256,
// Lanes512). Compiled once per ISA (see simd.h): no include guard, no includes; the includer
// provides <immintrin.h> and simd.h first, and defines BK_ISA_AVX2 and BK_ISA_AVX512.
//
// How it counts: each add16() folds 16 vectors into one "sixteens" vector with 15 carry-save
// adders (a + b + c = 2 high + low, bitwise), the running remainder kept bit-sliced in
// ones .. eights; the sixteens' bits go to 4-bit fields (bit 4q + j in field q of nibble[j]),
// which hold 15 groups; those fold into 16-bit fields (half[k]: bits k and k + 16), which hold
// 4369 folds; those drain into 64-bit totals. Per 16 vectors that is 15 adders and 12 nibble
// operations, where counting each vector's nibbles alone (stats::BitPositionCounter) would be
// 192.

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

// 8 lanes of GCC vector extensions: whatever the ISA compiles them to (two SSE2 registers in
// the base ISA).
struct LanesU32x8 {
  using V = u32x8;
  static constexpr int kLanes = 8;
  static BK_ALWAYS_INLINE V zero() { return V{}; }
  static BK_ALWAYS_INLINE V set1(uint32_t x) { return V{} + x; }
  static BK_ALWAYS_INLINE V load(const uint32_t* x) {
    V v;
    std::memcpy(&v, x, sizeof v);
    return v;
  }
  static BK_ALWAYS_INLINE V add(V a, V b) { return a + b; }
  static BK_ALWAYS_INLINE V bit_and(V a, V b) { return a & b; }
  static BK_ALWAYS_INLINE V shift_right(V a, int n) { return a >> n; }
  static BK_ALWAYS_INLINE void carry_save_add(V& high, V& low, V a, V b, V c) {
    const V u = a ^ b;
    high = (a & b) | (u & c);
    low = u ^ c;
  }
  static BK_ALWAYS_INLINE int64_t lane_sum(V v) {
    int64_t total = 0;
    for (int l = 0; l < kLanes; ++l) total += v[l];
    return total;
  }
  // The lanes of v whose bit k is set.
  static BK_ALWAYS_INLINE int lanes_with_bit(V v, int k) {
    int count = 0;
    for (int l = 0; l < kLanes; ++l) count += (v[l] >> k) & 1u;
    return count;
  }
};

#if BK_ISA_AVX2
struct Lanes256 {
  using V = __m256i;
  static constexpr int kLanes = 8;
  static BK_ALWAYS_INLINE V zero() { return _mm256_setzero_si256(); }
  static BK_ALWAYS_INLINE V set1(uint32_t x) { return _mm256_set1_epi32(int(x)); }
  // x: 32-byte aligned.
  static BK_ALWAYS_INLINE V load(const uint32_t* x) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
  }
  static BK_ALWAYS_INLINE V add(V a, V b) { return _mm256_add_epi32(a, b); }
  static BK_ALWAYS_INLINE V bit_and(V a, V b) { return _mm256_and_si256(a, b); }
  static BK_ALWAYS_INLINE V shift_right(V a, int n) { return _mm256_srli_epi32(a, n); }
  // For the depth bins' one-hot words (depth_window.h): signed lanes, shift counts per lane.
  static BK_ALWAYS_INLINE V sub(V a, V b) { return _mm256_sub_epi32(a, b); }
  static BK_ALWAYS_INLINE V max(V a, V b) { return _mm256_max_epi32(a, b); }
  static BK_ALWAYS_INLINE V bit_or(V a, V b) { return _mm256_or_si256(a, b); }
  static BK_ALWAYS_INLINE V sign_mask(V a) { return _mm256_srai_epi32(a, 31); }
  // a << n lane by lane; 0 where n, read unsigned, is 32 or more.
  static BK_ALWAYS_INLINE V shift_left_each(V a, V n) { return _mm256_sllv_epi32(a, n); }
  // No ternary logic below AVX-512: five instructions.
  static BK_ALWAYS_INLINE void carry_save_add(V& high, V& low, V a, V b, V c) {
    const V u = _mm256_xor_si256(a, b);
    high = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
    low = _mm256_xor_si256(u, c);
  }
  static BK_ALWAYS_INLINE int64_t lane_sum(V v) {
    alignas(32) int32_t x[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(x), v);
    int64_t total = 0;
    for (int l = 0; l < kLanes; ++l) total += x[l];
    return total;
  }
  static BK_ALWAYS_INLINE int lanes_with_bit(V v, int k) {
    const __m256i at_sign = _mm256_sll_epi32(v, _mm_cvtsi32_si128(31 - k));
    return __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(at_sign)));
  }
};
#endif

#if BK_ISA_AVX512
struct Lanes512 {
  using V = __m512i;
  static constexpr int kLanes = 16;
  static BK_ALWAYS_INLINE V zero() { return _mm512_setzero_si512(); }
  static BK_ALWAYS_INLINE V set1(uint32_t x) { return _mm512_set1_epi32(int(x)); }
  // x: 64-byte aligned.
  static BK_ALWAYS_INLINE V load(const uint32_t* x) { return _mm512_load_si512(x); }
  static BK_ALWAYS_INLINE V add(V a, V b) { return _mm512_add_epi32(a, b); }
  static BK_ALWAYS_INLINE V bit_and(V a, V b) { return _mm512_and_si512(a, b); }
  static BK_ALWAYS_INLINE V shift_right(V a, int n) { return _mm512_srli_epi32(a, n); }
  static BK_ALWAYS_INLINE V sub(V a, V b) { return _mm512_sub_epi32(a, b); }
  static BK_ALWAYS_INLINE V max(V a, V b) { return _mm512_max_epi32(a, b); }
  static BK_ALWAYS_INLINE V bit_or(V a, V b) { return _mm512_or_si512(a, b); }
  static BK_ALWAYS_INLINE V sign_mask(V a) { return _mm512_srai_epi32(a, 31); }
  static BK_ALWAYS_INLINE V shift_left_each(V a, V n) { return _mm512_sllv_epi32(a, n); }
  static BK_ALWAYS_INLINE void carry_save_add(V& high, V& low, V a, V b, V c) {
    high = _mm512_ternarylogic_epi32(a, b, c, 0xE8);  // majority
    low = _mm512_ternarylogic_epi32(a, b, c, 0x96);   // parity
  }
  static BK_ALWAYS_INLINE int64_t lane_sum(V v) { return _mm512_reduce_add_epi32(v); }
  static BK_ALWAYS_INLINE int lanes_with_bit(V v, int k) {
    return __builtin_popcount(_mm512_test_epi32_mask(v, _mm512_set1_epi32(int(1u << k))));
  }
};
#endif

// Counts, per bit position, the 32-bit words of a stream of vectors, 16 vectors per add16()
// (see the top of this file). The vectors of one add16() may come in any order.
template <class Lanes>
struct PositionCounter {
  using V = typename Lanes::V;
  static constexpr int kGroupsPerFold = 15;
  static constexpr int kFoldsPerDrain = 4369;  // 4369 * 15 = 65535 sixteens per 16-bit field

  V ones, twos, fours, eights;
  V nibble[4];
  V half[16];
  int groups = 0, folds = 0;
  bool used = false;  // anything added since the last finish
  int64_t totals[32] = {};

  // A constructor, not default member initializers: GCC 12 compiles those without the target
  // of the region (see simd.h).
  PositionCounter() {
    ones = twos = fours = eights = Lanes::zero();
    for (auto& n : nibble) n = Lanes::zero();
    for (auto& h : half) h = Lanes::zero();
  }

  // at(v), v = 0 .. 15, called once each in some order: the 16 vectors.
  template <class At>
  BK_ALWAYS_INLINE void add16(const At& at) {
    // Vectors first .. first + 7 into ones .. fours; returns their carry of weight 8.
    auto eights_of = [&](int first) BK_ALWAYS_INLINE_LAMBDA {
      V twos_a, twos_b, fours_a, fours_b, carry;
      Lanes::carry_save_add(twos_a, ones, ones, at(first), at(first + 1));
      Lanes::carry_save_add(twos_b, ones, ones, at(first + 2), at(first + 3));
      Lanes::carry_save_add(fours_a, twos, twos, twos_a, twos_b);
      Lanes::carry_save_add(twos_a, ones, ones, at(first + 4), at(first + 5));
      Lanes::carry_save_add(twos_b, ones, ones, at(first + 6), at(first + 7));
      Lanes::carry_save_add(fours_b, twos, twos, twos_a, twos_b);
      Lanes::carry_save_add(carry, fours, fours, fours_a, fours_b);
      return carry;
    };
    const V eights_a = eights_of(0);
    const V eights_b = eights_of(8);
    V sixteens;
    Lanes::carry_save_add(sixteens, eights, eights, eights_a, eights_b);
    const V nibble_bits = Lanes::set1(0x11111111u);
    for (int j = 0; j < 4; ++j)
      nibble[j] = Lanes::add(nibble[j],
                             Lanes::bit_and(Lanes::shift_right(sixteens, j), nibble_bits));
    used = true;
    if (++groups == kGroupsPerFold) fold();
  }

  // words: 16 vectors of words, aligned as Lanes::load needs.
  BK_ALWAYS_INLINE void add16_words(const uint32_t* words) {
    add16([&](int v) BK_ALWAYS_INLINE_LAMBDA { return Lanes::load(words + Lanes::kLanes * v); });
  }

  // words[0 .. n - 1], zero-padded in place to whole groups of 16 vectors (words has room for
  // them, and is aligned as Lanes::load needs).
  BK_ALWAYS_INLINE void add_words(uint32_t* words, int n) {
    constexpr int kGroupWords = 16 * Lanes::kLanes;
    const int padded = (n + kGroupWords - 1) / kGroupWords * kGroupWords;
    for (int j = n; j < padded; ++j) words[j] = 0u;
    for (int j = 0; j < padded; j += kGroupWords) add16_words(words + j);
  }

  // Nibble field q of nibble[j] counts bit 4q + j: fields r and r + 4 go to half[4r + j].
  BK_ALWAYS_INLINE void fold() {
    const V fields = Lanes::set1(0x000F000Fu);
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 4; ++j)
        half[4 * r + j] = Lanes::add(
            half[4 * r + j], Lanes::bit_and(Lanes::shift_right(nibble[j], 4 * r), fields));
    for (auto& n : nibble) n = Lanes::zero();
    groups = 0;
    if (++folds == kFoldsPerDrain) drain();
  }

  void drain() {
    const V low_half = Lanes::set1(0xFFFFu);
    for (int k = 0; k < 16; ++k) {  // lanes of <= 65535 each: their sum does not overflow
      totals[k] += 16 * Lanes::lane_sum(Lanes::bit_and(half[k], low_half));
      totals[k + 16] += 16 * Lanes::lane_sum(Lanes::shift_right(half[k], 16));
      half[k] = Lanes::zero();
    }
    folds = 0;
  }

  // Everything counted so far, per bit position, into counts[0..31]; starts over. In vectors
  // (and on AVX-512 mask popcounts): it runs once per chunk, and on small tensors, one chunk
  // each, scalar loops here were half of the statistics' cost.
  void finish(int64_t* counts) {
    if (!used) return;  // everything is still zero
    fold();
    drain();
    const V rest[4] = {ones, twos, fours, eights};  // the remainder, weights 1, 2, 4, 8
    for (int k = 0; k < 32; ++k) {
      int64_t count = 0;
      for (int w = 0; w < 4; ++w) count += int64_t(Lanes::lanes_with_bit(rest[w], k)) << w;
      counts[k] += totals[k] + count;
      totals[k] = 0;
    }
    ones = twos = fours = eights = Lanes::zero();
    used = false;
  }
};

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
