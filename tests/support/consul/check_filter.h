#pragma once

// The part of Consul's `?filter=` language (hashicorp/go-bexpr) that the
// bridge uses on /v1/health/state/<state>: `Selector == "value"`,
// `Selector != "value"`, combined with `and`, `or`, `not` and parentheses.
// Anything else is refused the way Consul refuses an expression it cannot
// compile (HTTP 400), so a wrong expression fails loudly in tests instead of
// silently matching everything.

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

namespace hb::test_support {

class CheckFilter {
 public:
  // The value of a selector for one row.
  using Field = std::function<std::string(std::string_view selector)>;

  // Parses `expression` against the selectors that exist for the endpoint.
  // On failure returns nullptr and sets `error` to Consul's text.
  static std::unique_ptr<CheckFilter> Parse(std::string_view expression,
                                            const std::set<std::string, std::less<>>& selectors,
                                            std::string& error);
  ~CheckFilter();

  bool Matches(const Field& field) const;

  struct Node;

 private:
  explicit CheckFilter(std::unique_ptr<Node> root);
  std::unique_ptr<Node> root_;
};

}  // namespace hb::test_support
