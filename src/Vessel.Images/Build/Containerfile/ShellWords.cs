using System.Text;

namespace Vessel.Images.Build.Containerfile;

/// <summary>Variable expansion and word splitting as Docker's builder does it (BuildKit's shell lexer) for the
/// instructions that expand (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL):
/// <c>$VAR</c>, <c>${VAR}</c>, <c>${VAR:-word}</c>, <c>${VAR-word}</c>, <c>${VAR:+word}</c>, <c>${VAR+word}</c>,
/// <c>${VAR:?message}</c>, <c>${VAR?message}</c>; single quotes are literal, double quotes expand; the escape
/// character makes the next character literal (inside double quotes only before <c>"</c>, <c>$</c> and itself).
/// Quotes are removed. RUN, CMD and ENTRYPOINT are never expanded here: the shell in the container does it.</summary>
public sealed class ShellWords(char escape = '\\')
{
    /// <summary>One word: quotes removed, variables expanded (no splitting).</summary>
    public string Word(string input, Func<string, string?> lookup) => new Lexer(input, escape, lookup).Run(split: false)[0];

    /// <summary>Words split on unquoted whitespace; an unquoted expansion that comes out empty adds no word.</summary>
    public IReadOnlyList<string> Words(string input, Func<string, string?> lookup) => new Lexer(input, escape, lookup).Run(split: true);

    /// <summary>The names a word refers to (to know which build args a step uses).</summary>
    public static IReadOnlySet<string> Referenced(string input, char escape = '\\')
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        try { new Lexer(input, escape, n => { names.Add(n); return null; }, lenient: true).Run(split: true); }
        catch (ShellWordException) { }
        return names;
    }

    private sealed class Lexer(string s, char esc, Func<string, string?> lookup, bool lenient = false)
    {
        private int _i;

        public List<string> Run(bool split)
        {
            var words = new List<string>();
            var cur = new StringBuilder();
            bool any = false; // the current word has content or quotes (so "" is a word)
            while (_i < s.Length)
            {
                char c = s[_i];
                if (split && char.IsWhiteSpace(c))
                {
                    _i++;
                    if (any) words.Add(cur.ToString());
                    cur.Clear();
                    any = false;
                    continue;
                }
                if (c == '\'') { _i++; cur.Append(SingleQuoted()); any = true; }
                else if (c == '"') { _i++; cur.Append(DoubleQuoted()); any = true; }
                else if (c == esc)
                {
                    _i++;
                    if (_i < s.Length) { cur.Append(s[_i]); _i++; any = true; }
                    else { cur.Append(esc); any = true; } // a trailing escape stays
                }
                else if (c == '$')
                {
                    string v = Dollar(stopAt: null);
                    if (v.Length > 0) any = true;
                    cur.Append(v);
                }
                else { cur.Append(c); _i++; any = true; }
            }
            if (any || !split) words.Add(cur.ToString());
            return words;
        }

        private string SingleQuoted()
        {
            int end = s.IndexOf('\'', _i);
            if (end < 0) throw new ShellWordException("unexpected end of statement while looking for matching single-quote");
            string r = s[_i..end];
            _i = end + 1;
            return r;
        }

        private string DoubleQuoted()
        {
            var sb = new StringBuilder();
            while (true)
            {
                if (_i >= s.Length) throw new ShellWordException("unexpected end of statement while looking for matching double-quote");
                char c = s[_i];
                if (c == '"') { _i++; return sb.ToString(); }
                if (c == '$') { sb.Append(Dollar(stopAt: null)); continue; }
                if (c == esc && _i + 1 < s.Length)
                {
                    char n = s[_i + 1];
                    if (n != '"' && n != '$' && n != esc) sb.Append(esc);
                    sb.Append(n);
                    _i += 2;
                    continue;
                }
                sb.Append(c);
                _i++;
            }
        }

        /// <summary>At a '$': the expansion. A '$' not followed by a name or '{' is literal.</summary>
        private string Dollar(char? stopAt)
        {
            _i++; // '$'
            if (_i >= s.Length) return "$";
            char c = s[_i];
            if (c == '{') return Braced();
            if (!IsNameStart(c)) return "$";
            int start = _i;
            while (_i < s.Length && IsNameChar(s[_i])) _i++;
            return lookup(s[start.._i]) ?? "";
        }

        private string Braced()
        {
            _i++; // '{'
            int start = _i;
            while (_i < s.Length && IsNameChar(s[_i])) _i++;
            string name = s[start.._i];
            if (name.Length == 0)
            {
                if (lenient) return "";
                throw new ShellWordException($"bad substitution: no variable name after '${{' in \"{s}\"");
            }
            if (_i >= s.Length)
            {
                if (lenient) return "";
                throw new ShellWordException($"missing '}}' in \"{s}\"");
            }
            if (s[_i] == '}') { _i++; return lookup(name) ?? ""; }
            bool colon = false;
            if (s[_i] == ':') { colon = true; _i++; }
            if (_i >= s.Length)
            {
                if (lenient) return "";
                throw new ShellWordException($"missing '}}' in \"{s}\"");
            }
            char op = s[_i];
            if (op is not ('-' or '+' or '?'))
            {
                if (lenient) return "";
                throw new ShellWordException($"unsupported modifier ({(colon ? ":" : "")}{op}) in substitution \"{s}\"");
            }
            _i++;
            string word = Nested();
            string? value = lookup(name);
            bool set = colon ? !string.IsNullOrEmpty(value) : value is not null;
            return op switch
            {
                '-' => set ? value! : word,
                '+' => set ? word : "",
                _ => set ? value! : lenient ? "" : throw new ShellWordException($"{name}: {(word.Length > 0 ? word : "is not allowed to be unset")}"),
            };
        }

        /// <summary>The word of a modifier, up to the matching '}': quotes and nested expansions processed.</summary>
        private string Nested()
        {
            var sb = new StringBuilder();
            while (true)
            {
                if (_i >= s.Length)
                {
                    if (lenient) return sb.ToString();
                    throw new ShellWordException($"missing '}}' in \"{s}\"");
                }
                char c = s[_i];
                if (c == '}') { _i++; return sb.ToString(); }
                if (c == '\'') { _i++; sb.Append(SingleQuoted()); }
                else if (c == '"') { _i++; sb.Append(DoubleQuoted()); }
                else if (c == '$') sb.Append(Dollar(stopAt: '}'));
                else if (c == esc && _i + 1 < s.Length) { sb.Append(s[_i + 1]); _i += 2; }
                else { sb.Append(c); _i++; }
            }
        }

        private static bool IsNameStart(char c) => c is '_' or (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9');
        private static bool IsNameChar(char c) => IsNameStart(c);
    }
}

/// <summary>A word could not be expanded (unbalanced quotes, bad substitution, <c>${VAR:?}</c> unset).</summary>
public sealed class ShellWordException(string message) : Exception(message);
