#pragma once

// Under ASan or TSan (and at -O0) code runs tens of times slower. Tests
// whose size is about load rather than correctness (thousands of random
// sequences, hundreds of held connections) scale down there: the release
// pass proves the size, the sanitizer passes look for memory errors and
// races, which a fraction of the repetitions exercises as well.

namespace hb::test_support {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace hb::test_support
