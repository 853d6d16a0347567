#include "cli/dockerignore.h"

#include <fstream>
#include <sstream>

namespace slipway::cli {
namespace {

constexpr char32_t kBadRune = 0xFFFD;

// Decodes the UTF-8 rune at s[i]; a malformed byte is one kBadRune, as Go's decoder does.
char32_t DecodeRune(std::string_view s, size_t i, size_t* len) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return b < 0x80 ? b : kBadRune;
  }
  if (n == 1) {
    *len = 1;
    return b;
  }
  char32_t r = b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) {
      *len = 1;
      return kBadRune;
    }
    r = (r << 6) | (c & 0x3F);
  }
  *len = n;
  return r;
}

std::u32string DecodeAll(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0, n = 0; i < s.size(); i += n) out.push_back(DecodeRune(s, i, &n));
  return out;
}

void AppendUtf8(std::string* out, char32_t r) {
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

// Go's strings.TrimSpace for the whitespace a .dockerignore line can carry.
std::string_view TrimSpace(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// One endpoint of a range inside `[...]`, with filepath.Match's rules: `-` and `]` must be
// escaped, `\` escapes, and the class must go on after it.
bool ClassChar(const std::u32string& p, size_t* i, char32_t* out) {
  if (*i >= p.size() || p[*i] == U'-' || p[*i] == U']') return false;
  if (p[*i] == U'\\') {
    ++*i;
    if (*i >= p.size()) return false;
  }
  *out = p[*i];
  ++*i;
  return *i < p.size();
}

IgnorePattern::Token MakeToken(IgnorePattern::Token::Kind kind, char32_t rune = 0) {
  IgnorePattern::Token t;
  t.kind = kind;
  t.rune = rune;
  return t;
}

}  // namespace

std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  bool rooted = path.front() == '/';
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == ".") {
      // Repeated slashes and `.` elements say nothing.
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

// Mirrors Docker's translation of a pattern into a regular expression token by token, including
// how it picks the exact, prefix and suffix shortcuts; the tokens stand for the expression.
Result<IgnorePattern> IgnorePattern::Compile(std::string_view pattern, bool exception) {
  IgnorePattern out;
  out.text_ = std::string(pattern);
  out.exception_ = exception;
  auto bad = [&] {
    return Status::InvalidArgument("the .dockerignore pattern \"" + std::string(pattern) +
                                   "\" is malformed (an unclosed or empty \"[...]\" class, a bad "
                                   "range, or a trailing \"\\\"); fix or remove that line");
  };

  const std::u32string p = DecodeAll(pattern);
  MatchType type = MatchType::kExact;
  bool prefix_open = true;  // still in the literal run at the start of the pattern
  auto add = [&](Token t) {
    // A byte that is not UTF-8 decodes to U+FFFD, whose encoding is not that byte: the prefix
    // ends before it, or paths the pattern matches would not start with it.
    if (t.kind == Token::kLiteral && prefix_open && t.rune != kBadRune) {
      AppendUtf8(&out.literal_prefix_, t.rune);
    } else {
      prefix_open = false;
    }
    out.tokens_.push_back(std::move(t));
  };

  for (size_t i = 0, step = 0; i < p.size(); ++step) {
    char32_t ch = p[i++];
    if (ch == U'*') {
      if (i < p.size() && p[i] == U'*') {
        ++i;
        if (i < p.size() && p[i] == U'/') ++i;  // `**/` is `**`
        if (i == p.size()) {
          if (type == MatchType::kExact) {
            type = MatchType::kPrefix;
            prefix_open = false;
          } else {
            add(MakeToken(Token::kAnyTail));
            type = MatchType::kTokens;
          }
        } else {
          add(MakeToken(Token::kDirs));
          type = MatchType::kTokens;
        }
        if (step == 0) type = MatchType::kSuffix;
      } else {
        add(MakeToken(Token::kStar));
        type = MatchType::kTokens;
      }
    } else if (ch == U'?') {
      add(MakeToken(Token::kAnyOne));
      type = MatchType::kTokens;
    } else if (ch == U'\\') {
      if (i == p.size()) return bad();  // filepath.Match rejects a trailing escape
      add(MakeToken(Token::kLiteral, p[i++]));
      type = MatchType::kTokens;
    } else if (ch == U'[') {
      Token t = MakeToken(Token::kClass);
      if (i < p.size() && p[i] == U'^') {
        t.negated = true;
        ++i;
      }
      while (true) {
        if (i < p.size() && p[i] == U']' && !t.ranges.empty()) {
          ++i;
          break;
        }
        char32_t lo = 0;
        if (!ClassChar(p, &i, &lo)) return bad();
        char32_t hi = lo;
        if (p[i] == U'-') {
          ++i;
          if (!ClassChar(p, &i, &hi)) return bad();
        }
        t.ranges.emplace_back(lo, hi);
      }
      add(std::move(t));
      type = MatchType::kTokens;
    } else if (ch == U']') {
      add(MakeToken(Token::kLiteral, ch));
      type = MatchType::kTokens;
    } else {
      add(MakeToken(Token::kLiteral, ch));
    }
  }
  if (type == MatchType::kSuffix) out.literal_prefix_.clear();
  out.type_ = type;
  return out;
}

bool IgnorePattern::Matches(std::string_view path) const {
  switch (type_) {
    case MatchType::kExact:
      return path == text_;
    case MatchType::kPrefix:
      return path.starts_with(std::string_view(text_).substr(0, text_.size() - 2));
    case MatchType::kSuffix: {
      std::string_view suffix = std::string_view(text_).substr(2);
      if (path.ends_with(suffix)) return true;
      return !suffix.empty() && suffix.front() == '/' && path == suffix.substr(1);
    }
    case MatchType::kTokens:
      break;
  }

  // The tokens as a small NFA run over the path's runes. at[k]: tokens [0, k) matched so far;
  // in_dirs[k]: inside the `.*/` of a `**` at k, which may be left only after a `/`.
  const std::u32string s = DecodeAll(path);
  const size_t n = tokens_.size();
  std::vector<char> at(n + 1, 0), in_dirs(n, 0), next_at(n + 1), next_in(n);
  at[0] = 1;
  auto close = [&](std::vector<char>& states) {
    for (size_t k = 0; k < n; ++k) {
      auto kind = tokens_[k].kind;
      if (states[k] && (kind == Token::kStar || kind == Token::kDirs || kind == Token::kAnyTail)) {
        states[k + 1] = 1;
      }
    }
  };
  close(at);
  for (size_t i = 0;; ++i) {
    // Docker's expression ends in `(/.*)?$`: the pattern may stop where a directory ends.
    if (at[n] && (i == s.size() || s[i] == U'/')) return true;
    if (i == s.size()) return false;
    const char32_t c = s[i];
    std::fill(next_at.begin(), next_at.end(), 0);
    std::fill(next_in.begin(), next_in.end(), 0);
    bool alive = false;
    for (size_t k = 0; k < n; ++k) {
      const Token& t = tokens_[k];
      if (t.kind == Token::kDirs && (at[k] || in_dirs[k])) {
        next_in[k] = 1;
        if (c == U'/') next_at[k + 1] = 1;
        alive = true;
        continue;
      }
      if (!at[k]) continue;
      switch (t.kind) {
        case Token::kLiteral:
          if (c == t.rune) next_at[k + 1] = alive = true;
          break;
        case Token::kAnyOne:
          if (c != U'/') next_at[k + 1] = alive = true;
          break;
        case Token::kStar:
          if (c != U'/') next_at[k] = alive = true;
          break;
        case Token::kAnyTail:
          next_at[k] = alive = true;
          break;
        case Token::kClass: {
          bool in = false;
          for (auto [lo, hi] : t.ranges) in = in || (lo <= c && c <= hi);
          if (in != t.negated) next_at[k + 1] = alive = true;
          break;
        }
        case Token::kDirs:
          break;
      }
    }
    if (!alive) return false;
    at.swap(next_at);
    in_dirs.swap(next_in);
    close(at);
  }
}

Result<DockerIgnore> DockerIgnore::Parse(std::string_view contents) {
  DockerIgnore out;
  size_t line_no = 0;
  size_t start = 0;
  while (start < contents.size()) {
    size_t end = contents.find('\n', start);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A comment only when `#` is the very first character, before trimming, as Docker reads it.
    if (line.starts_with('#')) continue;
    line = TrimSpace(line);
    if (line.empty()) continue;

    bool exception = line.front() == '!';
    if (exception) line = TrimSpace(line.substr(1));
    std::string pattern(line);
    if (!pattern.empty()) {
      pattern = CleanPath(pattern);
      if (pattern.size() > 1 && pattern.front() == '/') pattern.erase(0, 1);
    }
    // Docker cleans the line once more with its `!` in front; "!/" thereby becomes a lone "!".
    if (exception) pattern = CleanPath("!" + pattern).substr(1);
    if (exception && pattern.empty()) {
      return Status::InvalidArgument(".dockerignore line " + std::to_string(line_no) +
                                     " is a lone \"!\", an exception with no pattern; add the "
                                     "pattern to re-include after the \"!\" or remove the line");
    }
    auto compiled = IgnorePattern::Compile(pattern, exception);
    if (!compiled.ok()) {
      return compiled.status().WithContext(".dockerignore line " + std::to_string(line_no));
    }
    out.has_exceptions_ = out.has_exceptions_ || exception;
    out.patterns_.push_back(std::move(compiled).value());
  }
  return out;
}

Result<DockerIgnore> DockerIgnore::Load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return DockerIgnore();
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return Status::FailedPrecondition("cannot read " + file.string() +
                                      "; check its permissions and run the command again");
  }
  auto parsed = Parse(text.str());
  if (!parsed.ok()) return parsed.status().WithContext(file.string());
  return parsed;
}

bool DockerIgnore::Excludes(std::string_view path) const {
  bool matched = false;
  for (const IgnorePattern& p : patterns_) {
    // Only a pattern that could change the verdict is worth matching.
    if (p.exception() != matched) continue;
    bool match = p.Matches(path);
    for (size_t slash = path.find('/'); !match && slash != std::string_view::npos;
         slash = path.find('/', slash + 1)) {
      match = p.Matches(path.substr(0, slash));
    }
    if (match) matched = !p.exception();
  }
  return matched;
}

// An exception can match a path below `dir` only through that path or one of its parents below
// `dir` (one matching `dir` or above would have kept `dir` itself in), and every path a pattern
// matches starts with its literal prefix.
bool DockerIgnore::MayReincludeBelow(std::string_view dir) const {
  if (!has_exceptions_) return false;
  const std::string below = std::string(dir) + "/";
  for (const IgnorePattern& p : patterns_) {
    if (!p.exception()) continue;
    std::string_view prefix = p.literal_prefix();
    if (prefix.starts_with(below) || std::string_view(below).starts_with(prefix)) return true;
  }
  return false;
}

void DockerIgnore::AlwaysInclude(std::string_view path) {
  if (!Excludes(path)) return;
  std::string escaped;
  for (char c : path) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') escaped += '\\';
    escaped += c;
  }
  auto compiled = IgnorePattern::Compile(escaped, /*exception=*/true);
  // An escaped literal always compiles.
  patterns_.push_back(std::move(compiled).value());
  has_exceptions_ = true;
}

}  // namespace slipway::cli
