// The depth bins of the statistics' vector paths (GroupStats, stats_avx2.h; VectorStats,
// stats_avx512.h), counted per bit position of one-hot words by Harley-Seal carry-save adders
// (PositionCounter, position_counter.h). Compiled into namespaces v3 and v4 (see simd.h): no
// include guard, no includes; the includer provides <immintrin.h>, simd.h, position_counter.h
// and bitkernels/bitstats.h first.
//
// Two streams: `inside` for the 32 bins of a window starting at bin `window`, `outside` for the
// other 32, which only the groups with a bin outside the window run. The depth index of an
// element is its bin - window: inside 1 << index; outside 1 << bin for bins below the window,
// 1 << (bin - 32) above. Zero updates get kNoBin, which shifts out of both. The window starts at
// bin 32 (updates above 2^-8 of an ulp, where most of them are in fp32) and moves to cover the
// bins of a group after kMovesAfter groups in a row ran the outside stream: bf16 updates often
// spread over bins 20..50 (SGD with momentum on bf16 weights ~ N(0, 0.02): both streams in every
// group at a window fixed at bin 32, 7.7 ns per 16 elements with AVX-512 in L2 on Zen 4; 7.1
// with the window moved).

namespace bitkernels {
namespace cpu {
namespace BK_ISA_NS {

template <class Lanes, int kGroup>
struct DepthWindow {
  using V = typename Lanes::V;
  static constexpr int kNoBin = 64;
  static constexpr int kMovesAfter = 4;
  static_assert(kGroup == 16 * Lanes::kLanes, "a group is one add16 of the counters");

  alignas(64) int32_t index[kGroup];  // the group's depth indexes, written by the caller
  PositionCounter<Lanes> inside, outside;
  int window = 32;                        // the bin of index 0, 1 .. 32
  int outside_in_a_row = 0;               // groups in a row that ran the outside stream
  int64_t depth[stats::kDepthBins] = {};  // the streams' counts under earlier windows

  BK_ALWAYS_INLINE V index_at(int v) const {
    return Lanes::load(reinterpret_cast<const uint32_t*>(index) + Lanes::kLanes * v);
  }

  // Counts the group's indexes; outside_needed: some moving element's index is below 0 or above
  // 31. Returns whether the window moved (the caller's index constants change with it).
  BK_ALWAYS_INLINE bool count(bool outside_needed) {
    const V one = Lanes::set1(1u);
    inside.add16([&](int v) BK_ALWAYS_INLINE_LAMBDA {
      return Lanes::shift_left_each(one, index_at(v));  // 0 for an index below 0 or above 31
    });
    if (!outside_needed) {
      outside_in_a_row = 0;
      return false;
    }
    const V window_bits = Lanes::set1(uint32_t(window));
    const V window_one = Lanes::shift_left_each(one, window_bits);
    outside.add16([&](int v) BK_ALWAYS_INLINE_LAMBDA {
      const V index = index_at(v);
      // Below the window (index < 0, the sign as a mask): bin max(index + window, 0).
      const V under = Lanes::bit_and(
          Lanes::sign_mask(index),
          Lanes::shift_left_each(one, Lanes::max(Lanes::add(index, window_bits), Lanes::zero())));
      // Above (index >= 32): bin - 32 = window + (index - 32); an index below 32 shifts out.
      const V over = Lanes::shift_left_each(window_one, Lanes::sub(index, Lanes::set1(32u)));
      return Lanes::bit_or(under, over);
    });
    return ++outside_in_a_row == kMovesAfter && move_window();
  }

  // Adds the streams' counts to `depth`; they start over.
  void finish_streams() {
    inside.finish(depth + window);
    int64_t slots[32] = {};
    outside.finish(slots);
    for (int s = 0; s < 32; ++s) depth[s < window ? s : s + 32] += slots[s];
  }

  // Moves the window to where it covers the most bins of the group just counted (its indexes),
  // if that is all of them, or kMargin elements more than where it is: a spread wider than the
  // window does not move it back and forth. Of the starts that cover the most, the middle one:
  // the group is a sample, and the tails of the bins are on both sides. Returns whether it moved.
  BK_NOINLINE bool move_window() {
    constexpr int kMargin = kGroup / 8;
    outside_in_a_row = 0;
    int bins[stats::kDepthBins] = {};
    int moving = 0;
    for (int j = 0; j < kGroup; ++j) {
      if (index[j] == kNoBin) continue;
      ++bins[std::max(0, index[j] + window)];  // the top is clamped already
      ++moving;
    }
    // From bin 1: with the window at 0, bin 0 (every update more than 2^40 below the ulp)
    // would fall inside it and, clamped from below, outside it too.
    int covered[33] = {};
    for (int b = 1; b < 33; ++b) covered[1] += bins[b];
    int first = 1, last = 1;  // the starts that cover the most
    for (int w = 2; w <= 32; ++w) {
      covered[w] = covered[w - 1] + bins[w + 31] - bins[w - 1];
      if (covered[w] > covered[first]) first = last = w;
      if (covered[w] == covered[first]) last = w;
    }
    const int start = (first + last) / 2;
    if (covered[start] < moving && covered[start] < covered[window] + kMargin) return false;
    finish_streams();
    window = start;
    return true;
  }

  // Adds every bin counted to out_depth and returns how many elements had one; starts over.
  int64_t finish(int64_t* out_depth) {
    finish_streams();
    int64_t moving = 0;
    for (int b = 0; b < stats::kDepthBins; ++b) {
      out_depth[b] += depth[b], moving += depth[b];
      depth[b] = 0;
    }
    return moving;
  }
};

}  // namespace BK_ISA_NS
}  // namespace cpu
}  // namespace bitkernels
