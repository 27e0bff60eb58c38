using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Vessel.Images.Registry;

/// <summary>One challenge of a <c>WWW-Authenticate</c> header (RFC 7235): a scheme ("Bearer", "Basic") and
/// its auth-params, e.g. <c>Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"</c>.
/// Parameter names are case-insensitive.</summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public string? Realm => Get("realm");
    public string? Service => Get("service");
    public string? Scope => Get("scope");
    /// <summary>RFC 6750 error ("insufficient_scope", "invalid_token").</summary>
    public string? Error => Get("error");

    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);
    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? Get(string name) => Parameters.TryGetValue(name, out string? v) ? v : null;

    /// <summary>Parses a header value that may hold several challenges
    /// (<c>Basic realm="a", Bearer realm="b",service="c"</c>). Malformed input gives a FormatException
    /// with one line saying where.</summary>
    public static IReadOnlyList<AuthChallenge> ParseAll(string header)
    {
        if (!TryParseAll(header, out IReadOnlyList<AuthChallenge>? result, out string? error)) throw new FormatException(error);
        return result;
    }

    public static bool TryParseAll(string? header, [NotNullWhen(true)] out IReadOnlyList<AuthChallenge>? result, [NotNullWhen(false)] out string? error)
    {
        result = null;
        if (string.IsNullOrWhiteSpace(header)) { error = "empty WWW-Authenticate header"; return false; }
        var list = new List<AuthChallenge>();
        int i = 0;
        string s = header;
        SkipWs(s, ref i);
        while (i < s.Length)
        {
            string scheme = Token(s, ref i);
            if (scheme.Length == 0) { error = $"WWW-Authenticate: expected an auth scheme at offset {i} in \"{Shorten(s)}\""; return false; }
            var ps = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            SkipWs(s, ref i);
            while (i < s.Length)
            {
                // Either "name=value", or (after a comma) the next challenge's scheme.
                int save = i;
                string name = Token(s, ref i);
                SkipWs(s, ref i);
                if (name.Length == 0 || i >= s.Length || s[i] != '=')
                {
                    if (name.Length > 0) { i = save; break; } // a new challenge starts here
                    if (i < s.Length && s[i] == ',') { i++; SkipWs(s, ref i); continue; } // empty list element
                    error = $"WWW-Authenticate: unexpected character '{(i < s.Length ? s[i] : ' ')}' at offset {i} in \"{Shorten(s)}\"";
                    return false;
                }
                i++; // '='
                SkipWs(s, ref i);
                string value;
                if (i < s.Length && s[i] == '"')
                {
                    i++;
                    var sb = new StringBuilder();
                    bool closed = false;
                    while (i < s.Length)
                    {
                        char c = s[i++];
                        if (c == '\\' && i < s.Length) { sb.Append(s[i++]); continue; }
                        if (c == '"') { closed = true; break; }
                        sb.Append(c);
                    }
                    if (!closed) { error = $"WWW-Authenticate: unterminated quoted value of \"{name}\" in \"{Shorten(s)}\""; return false; }
                    value = sb.ToString();
                }
                else
                {
                    value = Token(s, ref i);
                    // token68 padding such as "abc==" is allowed for a value
                    while (i < s.Length && s[i] == '=') { value += "="; i++; }
                }
                ps[name] = value;
                SkipWs(s, ref i);
                if (i < s.Length)
                {
                    if (s[i] != ',') { error = $"WWW-Authenticate: expected ',' at offset {i} in \"{Shorten(s)}\""; return false; }
                    i++;
                    SkipWs(s, ref i);
                }
            }
            list.Add(new AuthChallenge(scheme, ps));
            SkipWs(s, ref i);
        }
        result = list;
        error = null;
        return true;
    }

    private static string Token(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && IsTokenChar(s[i])) i++;
        return s[start..i];
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~' or '/' or ':';

    private static void SkipWs(string s, ref int i)
    {
        while (i < s.Length && (s[i] == ' ' || s[i] == '\t')) i++;
    }

    private static string Shorten(string s) => s.Length > 200 ? s[..200] + "..." : s;
}
