#include "tests/support/consul/check_filter.h"

#include <cctype>
#include <utility>

namespace hb::test_support {

struct CheckFilter::Node {
  enum class Kind { kEqual, kNotEqual, kAnd, kOr, kNot } kind = Kind::kEqual;
  std::string selector;
  std::string value;
  std::unique_ptr<Node> left;
  std::unique_ptr<Node> right;
};

namespace {

constexpr std::string_view kPrefix = "Failed to create boolean expression evaluator: ";

// Recursive descent over: or := and ("or" and)*; and := unary ("and" unary)*;
// unary := "not" unary | "(" or ")" | selector ("=="|"!=") "string".
class Parser {
 public:
  Parser(std::string_view text, const std::set<std::string, std::less<>>& selectors)
      : text_(text), selectors_(selectors) {}

  std::unique_ptr<CheckFilter::Node> Parse(std::string& error) {
    auto root = Or();
    SkipSpace();
    if (root && pos_ != text_.size()) Fail("unexpected input after the expression");
    if (!error_.empty()) {
      error = std::string(kPrefix) + error_;
      return nullptr;
    }
    return root;
  }

 private:
  using NodePtr = std::unique_ptr<CheckFilter::Node>;

  void Fail(const std::string& what) {
    if (error_.empty()) error_ = "1:" + std::to_string(pos_ + 1) + ": " + what;
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  std::string_view Word() {
    SkipSpace();
    std::size_t end = pos_;
    while (end < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) {
      ++end;
    }
    return text_.substr(pos_, end - pos_);
  }
  bool Keyword(std::string_view keyword) {
    if (Word() != keyword) return false;
    pos_ += keyword.size();
    return true;
  }
  NodePtr Join(CheckFilter::Node::Kind kind, NodePtr left, NodePtr right) {
    auto node = std::make_unique<CheckFilter::Node>();
    node->kind = kind;
    node->left = std::move(left);
    node->right = std::move(right);
    return node;
  }
  NodePtr Or() {
    NodePtr left = And();
    while (left && Keyword("or")) {
      NodePtr right = And();
      if (!right) return nullptr;
      left = Join(CheckFilter::Node::Kind::kOr, std::move(left), std::move(right));
    }
    return left;
  }
  NodePtr And() {
    NodePtr left = Unary();
    while (left && Keyword("and")) {
      NodePtr right = Unary();
      if (!right) return nullptr;
      left = Join(CheckFilter::Node::Kind::kAnd, std::move(left), std::move(right));
    }
    return left;
  }
  NodePtr Unary() {
    if (++depth_ > 64) {
      Fail("expression nested too deeply");
      return nullptr;
    }
    NodePtr node = UnaryInner();
    --depth_;
    return node;
  }
  NodePtr UnaryInner() {
    if (Keyword("not")) {
      NodePtr operand = Unary();
      if (!operand) return nullptr;
      return Join(CheckFilter::Node::Kind::kNot, std::move(operand), nullptr);
    }
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '(') {
      ++pos_;
      NodePtr inner = Or();
      SkipSpace();
      if (!inner) return nullptr;
      if (pos_ >= text_.size() || text_[pos_] != ')') {
        Fail("no match found, expected: \")\"");
        return nullptr;
      }
      ++pos_;
      return inner;
    }
    return Match();
  }
  NodePtr Match() {
    const std::string_view selector = Word();
    if (selector.empty()) {
      Fail("no match found, expected: a selector, \"(\" or \"not\"");
      return nullptr;
    }
    if (!selectors_.contains(selector)) {
      error_ = "Selector \"" + std::string(selector) + "\" is not valid";
      return nullptr;
    }
    pos_ += selector.size();
    SkipSpace();
    auto node = std::make_unique<CheckFilter::Node>();
    node->selector = std::string(selector);
    const std::string_view rest = text_.substr(pos_);
    if (rest.starts_with("==")) {
      node->kind = CheckFilter::Node::Kind::kEqual;
    } else if (rest.starts_with("!=")) {
      node->kind = CheckFilter::Node::Kind::kNotEqual;
    } else {
      Fail("no match found, expected: \"!=\" or \"==\"");
      return nullptr;
    }
    pos_ += 2;
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      Fail("no match found, expected: a quoted string value");
      return nullptr;
    }
    ++pos_;
    for (;;) {
      if (pos_ >= text_.size()) {
        Fail("unterminated string value");
        return nullptr;
      }
      const char c = text_[pos_++];
      if (c == '"') break;
      if (c == '\\') {
        if (pos_ >= text_.size()) continue;
        const char escaped = text_[pos_++];
        if (escaped != '"' && escaped != '\\') {
          Fail("unsupported escape in a string value");
          return nullptr;
        }
        node->value.push_back(escaped);
        continue;
      }
      node->value.push_back(c);
    }
    return node;
  }

  std::string_view text_;
  const std::set<std::string, std::less<>>& selectors_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
};

bool Evaluate(const CheckFilter::Node& node, const CheckFilter::Field& field) {
  using Kind = CheckFilter::Node::Kind;
  switch (node.kind) {
    case Kind::kEqual:
      return field(node.selector) == node.value;
    case Kind::kNotEqual:
      return field(node.selector) != node.value;
    case Kind::kAnd:
      return Evaluate(*node.left, field) && Evaluate(*node.right, field);
    case Kind::kOr:
      return Evaluate(*node.left, field) || Evaluate(*node.right, field);
    case Kind::kNot:
      return !Evaluate(*node.left, field);
  }
  return false;
}

}  // namespace

CheckFilter::CheckFilter(std::unique_ptr<Node> root) : root_(std::move(root)) {}
CheckFilter::~CheckFilter() = default;

std::unique_ptr<CheckFilter> CheckFilter::Parse(std::string_view expression,
                                                const std::set<std::string, std::less<>>& selectors,
                                                std::string& error) {
  Parser parser(expression, selectors);
  auto root = parser.Parse(error);
  if (!root) {
    if (error.empty()) error = std::string(kPrefix) + "empty expression";
    return nullptr;
  }
  return std::unique_ptr<CheckFilter>(new CheckFilter(std::move(root)));
}

bool CheckFilter::Matches(const Field& field) const { return Evaluate(*root_, field); }

}  // namespace hb::test_support
