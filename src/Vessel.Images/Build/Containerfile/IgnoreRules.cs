using System.Text;
using System.Text.RegularExpressions;

namespace Vessel.Images.Build.Containerfile;

/// <summary>.dockerignore with Docker's rules (moby/patternmatcher): one pattern per line, <c>#</c> comments,
/// surrounding blanks trimmed, paths cleaned and relative to the context root (a leading <c>/</c> is dropped);
/// <c>*</c> and <c>?</c> never match <c>/</c>, <c>**</c> matches any number of directories, <c>[…]</c> classes,
/// <c>\</c> escapes; a path is excluded when it or one of its parent directories matches; <c>!</c> re-includes;
/// the last matching pattern wins.</summary>
public sealed class IgnoreRules
{
    private sealed record Pattern(string Text, Regex Regex, bool Exclusion, int Depth);

    private readonly List<Pattern> _patterns = [];

    public IReadOnlyList<string> Patterns => _patterns.Select(p => (p.Exclusion ? "!" : "") + p.Text).ToList();

    /// <summary>True when some pattern is an exception (<c>!</c>): an excluded directory must then still be walked.</summary>
    public bool HasExclusions => _patterns.Any(p => p.Exclusion);

    public bool IsEmpty => _patterns.Count == 0;

    /// <summary>The ignore file of a context directory: <c>.containerignore</c> (buildah's and podman's name) wins
    /// over <c>.dockerignore</c>, as in buildah; null when there is neither.</summary>
    public static string? FileIn(string contextDir)
    {
        foreach (string name in new[] { ".containerignore", ".dockerignore" })
            if (File.Exists(Path.Combine(contextDir, name))) return name;
        return null;
    }

    public static IgnoreRules Parse(string text)
    {
        var r = new IgnoreRules();
        foreach (string raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            bool exclusion = false;
            if (line[0] == '!')
            {
                exclusion = true;
                line = line[1..].Trim();
                if (line.Length == 0) throw new FormatException(".dockerignore: illegal exclusion pattern: \"!\"");
            }
            string clean = Clean(line);
            if (clean.StartsWith('/')) clean = clean.TrimStart('/');
            if (clean.Length == 0) clean = ".";
            r._patterns.Add(new Pattern(clean, ToRegex(clean), exclusion, clean.Split('/').Length));
        }
        return r;
    }

    /// <summary>Whether <paramref name="path"/> (relative, '/'-separated) is ignored.</summary>
    public bool IsIgnored(string path)
    {
        path = Clean(path).TrimStart('/');
        if (path is "" or ".") return false;
        string[] parts = path.Split('/');
        bool matched = false;
        foreach (Pattern p in _patterns)
        {
            if (p.Exclusion != matched) continue; // cannot change the outcome
            bool m = p.Regex.IsMatch(path);
            if (!m)
            {
                // A parent directory that matches excludes everything below it.
                for (int i = 1; i < parts.Length && !m; i++)
                    m = p.Regex.IsMatch(string.Join('/', parts.Take(i)));
            }
            if (m) matched = !p.Exclusion;
        }
        return matched;
    }

    /// <summary>Go's path.Clean for '/'-separated paths.</summary>
    public static string Clean(string path)
    {
        if (path.Length == 0) return ".";
        bool rooted = path[0] == '/';
        var stack = new List<string>();
        foreach (string part in path.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (stack.Count > 0 && stack[^1] != "..") stack.RemoveAt(stack.Count - 1);
                else if (!rooted) stack.Add("..");
                continue;
            }
            stack.Add(part);
        }
        string joined = string.Join('/', stack);
        return rooted ? "/" + joined : joined.Length == 0 ? "." : joined;
    }

    private static Regex ToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '*')
            {
                if (i + 1 < pattern.Length && pattern[i + 1] == '*')
                {
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/') i++;
                    sb.Append(i + 1 >= pattern.Length ? ".*" : "(.*/)?");
                }
                else sb.Append("[^/]*");
            }
            else if (c == '?') sb.Append("[^/]");
            else if (c == '[')
            {
                int end = pattern.IndexOf(']', i + 1);
                if (end < 0) throw new FormatException($".dockerignore: syntax error in pattern \"{pattern}\": unterminated [");
                string cls = pattern[(i + 1)..end];
                if (cls.StartsWith('^') || cls.StartsWith('!')) cls = "^" + cls[1..];
                sb.Append('[').Append(cls.Replace("\\", "\\\\")).Append(']');
                i = end;
            }
            else if (c == '\\' && i + 1 < pattern.Length)
            {
                i++;
                sb.Append(Regex.Escape(pattern[i].ToString()));
            }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        sb.Append('$');
        return new Regex(sb.ToString(), RegexOptions.CultureInvariant);
    }
}
