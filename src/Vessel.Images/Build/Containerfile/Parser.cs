using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Vessel.Images.Build.Containerfile;

/// <summary>Parses a Containerfile/Dockerfile the way Docker's frontend does: parser directives at the top
/// (<c># escape=`</c>, <c># syntax=…</c>), comments, line continuations (the escape character at the end of a
/// line; comment and empty lines inside a continuation are dropped), case-insensitive keywords, exec (JSON) and
/// shell forms, <c>--flag=value</c> options, here-documents for RUN/COPY/ADD. Pure: no file system. Every
/// error is a <see cref="ContainerfileException"/> naming file, line and column.</summary>
public static partial class Parser
{
    private static readonly string[] Known =
    [
        "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "VOLUME",
        "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "MAINTAINER",
    ];

    private static readonly Dictionary<string, string[]> AllowedFlags = new(StringComparer.Ordinal)
    {
        ["FROM"] = ["platform"],
        ["RUN"] = ["mount", "network", "security"],
        ["COPY"] = ["from", "chown", "chmod", "link", "parents", "exclude"],
        ["ADD"] = ["chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"],
        ["HEALTHCHECK"] = ["interval", "timeout", "start-period", "start-interval", "retries"],
    };

    [GeneratedRegex(@"^#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")]
    private static partial Regex DirectivePattern();

    [GeneratedRegex(@"(?<=^|\s)<<(-?)(?:""([^""\s]+)""|'([^'\s]+)'|([A-Za-z0-9_.\-]+))")]
    private static partial Regex HeredocPattern();

    [GeneratedRegex(@"^[a-z][a-z0-9\-_.]*$")]
    private static partial Regex StageNamePattern();

    public static ParsedContainerfile Parse(string text, string file = "Containerfile")
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        if (lines.Length > 0 && lines[0].StartsWith('\uFEFF')) lines[0] = lines[0][1..];
        var warnings = new List<string>();
        char escape = '\\';
        string? syntax = null;
        int i = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (; i < lines.Length; i++)
        {
            Match m = DirectivePattern().Match(lines[i]);
            if (!m.Success) break;
            string name = m.Groups[1].Value.ToLowerInvariant();
            if (name is not ("escape" or "syntax" or "check")) break; // an ordinary comment ends the directives
            var pos = new SourcePos(file, i + 1, 1);
            if (!seen.Add(name)) throw new ContainerfileException(pos, $"only one {name} parser directive can be used");
            string value = m.Groups[2].Value;
            if (name == "escape")
            {
                if (value is not ("\\" or "`")) throw new ContainerfileException(pos, $"invalid escape token '{value}' does not match ` or \\");
                escape = value[0];
            }
            else if (name == "syntax")
            {
                syntax = value;
                warnings.Add($"{pos}: the syntax directive ({value}) is noted and ignored: Vessel builds with its own frontend");
            }
        }

        var top = new List<Instruction>();
        while (i < lines.Length)
        {
            string line = lines[i];
            string trimmed = line.TrimStart(' ', '\t');
            if (trimmed.Length == 0 || trimmed[0] == '#') { i++; continue; }
            var logical = new LogicalLine(file);
            int startLine = i + 1;
            logical.Append(line, i + 1, 0);
            i++;
            while (EndsWithContinuation(logical.Text, escape, out int cut))
            {
                logical.Cut(cut);
                bool appended = false;
                while (i < lines.Length)
                {
                    string next = lines[i];
                    string t = next.TrimStart(' ', '\t');
                    if (t.Length > 0 && t[0] == '#') { i++; continue; }
                    if (t.Length == 0) { i++; warnings.Add($"{file}:{i}:1: empty continuation line"); continue; }
                    logical.Append(next, i + 1, 0);
                    i++;
                    appended = true;
                    break;
                }
                if (!appended) break;
            }
            Instruction instr = ParseInstruction(logical, escape, startLine, lines, ref i, nested: false, warnings);
            top.Add(instr);
        }

        var metaArgs = new List<ArgInstruction>();
        var stages = new List<Stage>();
        FromInstruction? from = null;
        var body = new List<Instruction>();
        foreach (Instruction instr in top)
        {
            if (instr is FromInstruction f)
            {
                if (from is not null) stages.Add(new Stage(stages.Count, from, body));
                from = f;
                body = [];
                continue;
            }
            if (from is null)
            {
                if (instr is ArgInstruction a) { metaArgs.Add(a); continue; }
                throw new ContainerfileException(instr.Pos, $"{instr.Keyword} before the first FROM: only ARG may come before FROM");
            }
            body.Add(instr);
        }
        if (from is null) throw new ContainerfileException(new SourcePos(file, Math.Max(1, lines.Length), 1), "the file has no FROM instruction");
        stages.Add(new Stage(stages.Count, from, body));
        var names = new Dictionary<string, SourcePos>(StringComparer.Ordinal);
        foreach (Stage s in stages)
            if (s.Name is string n && !names.TryAdd(n, s.From.Pos))
                throw new ContainerfileException(s.From.Pos, $"duplicate stage name \"{n}\" (first at {names[n]})");
        return new ParsedContainerfile(file, escape, syntax, metaArgs, stages, warnings);
    }

    /// <summary>The escape character as the last non-blank character of a line; <paramref name="cut"/> is its offset.</summary>
    private static bool EndsWithContinuation(string text, char escape, out int cut)
    {
        int end = text.Length;
        while (end > 0 && text[end - 1] is ' ' or '\t') end--;
        cut = end - 1;
        if (end == 0 || text[end - 1] != escape) return false;
        // An escaped escape ("\\" at the end) is not a continuation.
        int n = 0;
        for (int k = end - 1; k >= 0 && text[k] == escape; k--) n++;
        return n % 2 == 1;
    }

    /// <summary>Joined physical lines with a map from offsets back to (line, column).</summary>
    private sealed class LogicalLine(string file)
    {
        private readonly StringBuilder _sb = new();
        private readonly List<(int Offset, int Line, int Col)> _segments = [];
        public string File { get; } = file;
        public string Text => _sb.ToString();

        public void Append(string s, int line, int col0)
        {
            _segments.Add((_sb.Length, line, col0));
            _sb.Append(s);
        }

        public void Cut(int at) => _sb.Length = at;

        public SourcePos PosOf(int offset)
        {
            var seg = _segments[0];
            foreach (var s in _segments) if (s.Offset <= offset) seg = s;
            return new SourcePos(File, seg.Line, offset - seg.Offset + seg.Col + 1);
        }
    }

    private static Instruction ParseInstruction(LogicalLine logical, char escape, int startLine, string[] lines, ref int next, bool nested, List<string> warnings)
    {
        string text = logical.Text;
        int k = 0;
        while (k < text.Length && text[k] is ' ' or '\t') k++;
        int kwStart = k;
        while (k < text.Length && !char.IsWhiteSpace(text[k])) k++;
        string keyword = text[kwStart..k].ToUpperInvariant();
        SourcePos pos = logical.PosOf(kwStart);
        if (!Known.Contains(keyword)) throw new ContainerfileException(pos, $"unknown instruction: {text[kwStart..k]}");
        while (k < text.Length && char.IsWhiteSpace(text[k])) k++;

        // Options: --name=value words right after the keyword.
        var flags = new List<(string Name, string? Value, SourcePos Pos)>();
        if (keyword != "ONBUILD")
        {
            while (k + 1 < text.Length && text[k] == '-' && text[k + 1] == '-')
            {
                int fs = k;
                while (k < text.Length && !char.IsWhiteSpace(text[k])) k++;
                string word = text[(fs + 2)..k];
                int eq = word.IndexOf('=');
                string fname = (eq < 0 ? word : word[..eq]).ToLowerInvariant();
                string? fval = eq < 0 ? null : word[(eq + 1)..];
                SourcePos fpos = logical.PosOf(fs);
                if (!AllowedFlags.TryGetValue(keyword, out string[]? allowed) || !allowed.Contains(fname))
                    throw new ContainerfileException(fpos, $"unknown flag: --{fname} ({keyword} {(allowed is null ? "takes no flags" : "takes " + string.Join(", ", allowed.Select(a => "--" + a)))})");
                if (flags.Any(f => f.Name == fname) && fname is not ("mount" or "exclude"))
                    throw new ContainerfileException(fpos, $"duplicate flag --{fname}");
                flags.Add((fname, fval, fpos));
                while (k < text.Length && char.IsWhiteSpace(text[k])) k++;
            }
        }
        string rest = text[k..].TrimEnd();
        SourcePos restPos = logical.PosOf(Math.Min(k, Math.Max(0, text.Length - 1)));

        // Here-documents: the lines after the instruction, up to each terminator in turn.
        var heredocs = new List<Heredoc>();
        if (!nested && keyword is "RUN" or "COPY" or "ADD")
        {
            foreach (Match m in HeredocPattern().Matches(rest))
            {
                bool strip = m.Groups[1].Value == "-";
                bool quoted = m.Groups[2].Success || m.Groups[3].Success;
                string name = m.Groups[2].Success ? m.Groups[2].Value : m.Groups[3].Success ? m.Groups[3].Value : m.Groups[4].Value;
                var body = new StringBuilder();
                bool closed = false;
                while (next < lines.Length)
                {
                    string l = lines[next++];
                    string cmp = strip ? l.TrimStart('\t') : l;
                    if (cmp == name) { closed = true; break; }
                    body.Append(strip ? l.TrimStart('\t') : l).Append('\n');
                }
                if (!closed) throw new ContainerfileException(pos, $"here-document \"{name}\" is not terminated (no line \"{name}\" after line {startLine})");
                heredocs.Add(new Heredoc(name, body.ToString(), !quoted, strip));
            }
        }

        string? Flag(string name) => flags.FirstOrDefault(f => f.Name == name).Value;
        bool Has(string name) => flags.Any(f => f.Name == name);
        SourcePos FlagPos(string name) => flags.First(f => f.Name == name).Pos;
        void NeedArgs(string what = "at least one argument")
        {
            if (rest.Length == 0) throw new ContainerfileException(pos, $"{keyword} requires {what}");
        }

        switch (keyword)
        {
            case "FROM":
            {
                NeedArgs();
                var words = SplitRaw(rest, escape);
                string? alias = null;
                if (words.Count == 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase))
                {
                    alias = words[2];
                    if (alias != alias.ToLowerInvariant())
                    {
                        warnings.Add($"{pos}: stage name \"{alias}\" should be lowercase (stage names are case-insensitive)");
                        alias = alias.ToLowerInvariant();
                    }
                    if (!StageNamePattern().IsMatch(alias))
                        throw new ContainerfileException(pos, $"invalid stage name \"{words[2]}\": a letter, then letters, digits, '-', '_' or '.'");
                }
                else if (words.Count != 1)
                    throw new ContainerfileException(pos, "FROM takes an image and optionally AS NAME (FROM image [AS name])");
                if (Has("platform"))
                    warnings.Add($"{FlagPos("platform")}: FROM --platform={Flag("platform")} is ignored: Vessel builds for the host's platform");
                return new FromInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Image = words[0], Alias = alias, Platform = Flag("platform") };
            }
            case "RUN":
            {
                if (Has("mount")) throw new ContainerfileException(FlagPos("mount"), "RUN --mount is not supported by Vessel's builder yet");
                if (Has("security")) throw new ContainerfileException(FlagPos("security"), "RUN --security is not supported");
                string? network = Flag("network");
                if (network is not (null or "default" or "none" or "host"))
                    throw new ContainerfileException(FlagPos("network"), $"RUN --network={network}: expected default, none or host");
                NeedArgs("a command");
                CommandForm cmd = Command(rest, heredocs);
                return new RunInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Command = cmd, Network = network, Heredocs = heredocs };
            }
            case "COPY" or "ADD":
            {
                foreach (string bad in new[] { "parents", "exclude", "keep-git-dir" })
                    if (Has(bad)) throw new ContainerfileException(FlagPos(bad), $"{keyword} --{bad} is not supported by Vessel's builder yet");
                NeedArgs("at least two arguments: a source and a destination");
                IReadOnlyList<string> words = TryJsonArray(rest) ?? SplitRaw(rest, escape);
                if (words.Count < 2) throw new ContainerfileException(pos, $"{keyword} requires at least two arguments: a source and a destination");
                foreach (string f in new[] { "from", "chown", "chmod", "checksum" })
                    if (Has(f) && string.IsNullOrEmpty(Flag(f))) throw new ContainerfileException(FlagPos(f), $"--{f} needs a value (--{f}=…)");
                return new CopyInstruction
                {
                    Pos = pos, Keyword = keyword, Text = Normalize(text), IsAdd = keyword == "ADD", Sources = words.Take(words.Count - 1).ToList(),
                    Dest = words[^1], From = Flag("from"), Chown = Flag("chown"), Chmod = Flag("chmod"), Checksum = Flag("checksum"),
                    Link = Has("link") && Flag("link") is null or "true", Heredocs = heredocs,
                };
            }
            case "ENV" or "LABEL":
            {
                NeedArgs();
                var pairs = NameValues(rest, escape, keyword, restPos);
                return new KeyValueInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Pairs = pairs };
            }
            case "ARG":
            {
                NeedArgs("a name (ARG NAME[=default])");
                var args = new List<KeyValuePair<string, string?>>();
                foreach (string w in SplitRaw(rest, escape))
                {
                    int eq = w.IndexOf('=');
                    string name = eq < 0 ? w : w[..eq];
                    if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                        throw new ContainerfileException(pos, $"ARG: invalid name \"{name}\"");
                    args.Add(new(name, eq < 0 ? null : w[(eq + 1)..]));
                }
                return new ArgInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Args = args };
            }
            case "CMD" or "ENTRYPOINT":
                NeedArgs();
                return new CommandInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Command = Command(rest, []) };
            case "WORKDIR" or "USER" or "STOPSIGNAL" or "MAINTAINER":
                NeedArgs("exactly one argument");
                if (keyword == "MAINTAINER") warnings.Add($"{pos}: MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=…");
                if (keyword is "USER" or "STOPSIGNAL" && SplitRaw(rest, escape).Count != 1)
                    throw new ContainerfileException(pos, $"{keyword} requires exactly one argument");
                return new ValueInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Value = rest };
            case "EXPOSE":
                NeedArgs();
                return new ListInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Items = SplitRaw(rest, escape) };
            case "VOLUME":
            {
                NeedArgs();
                var json = TryJsonArray(rest);
                var items = json ?? SplitRaw(rest, escape);
                if (items.Count == 0 || items.Any(v => v.Trim().Length == 0)) throw new ContainerfileException(pos, "VOLUME specified can not be an empty string");
                return new ListInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Items = items, Literal = json is not null };
            }
            case "SHELL":
            {
                var json = TryJsonArray(rest);
                if (json is not { Count: > 0 }) throw new ContainerfileException(pos, "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]");
                return new ShellInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Shell = json };
            }
            case "HEALTHCHECK":
                return Healthcheck(pos, keyword, text, rest, flags);
            default: // ONBUILD
            {
                NeedArgs("an instruction");
                if (nested) throw new ContainerfileException(pos, "ONBUILD ONBUILD is not allowed");
                var inner = new LogicalLine(logical.File);
                SourcePos rp = logical.PosOf(k);
                inner.Append(rest, rp.Line, rp.Column - 1);
                int none = lines.Length;
                Instruction parsed = ParseInstruction(inner, escape, startLine, lines, ref none, nested: true, warnings);
                if (parsed.Keyword is "ONBUILD" or "FROM" or "MAINTAINER")
                    throw new ContainerfileException(parsed.Pos, $"{parsed.Keyword} isn't allowed as an ONBUILD trigger");
                return new OnbuildInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Trigger = rest, Parsed = parsed };
            }
        }
    }

    private static Instruction Healthcheck(SourcePos pos, string keyword, string text, string rest, List<(string Name, string? Value, SourcePos Pos)> flags)
    {
        var words = rest.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0) throw new ContainerfileException(pos, "HEALTHCHECK requires CMD or NONE");
        string kind = words[0].ToUpperInvariant();
        if (kind == "NONE")
        {
            if (words.Length > 1) throw new ContainerfileException(pos, "HEALTHCHECK NONE takes no other arguments");
            if (flags.Count > 0) throw new ContainerfileException(flags[0].Pos, "HEALTHCHECK NONE takes no options");
            return new HealthcheckInstruction { Pos = pos, Keyword = keyword, Text = Normalize(text), Test = ["NONE"] };
        }
        if (kind != "CMD") throw new ContainerfileException(pos, $"HEALTHCHECK: unknown type \"{words[0]}\" (CMD or NONE)");
        if (words.Length < 2) throw new ContainerfileException(pos, "HEALTHCHECK CMD requires a command");
        CommandForm cmd = Command(words[1].Trim(), []);
        IReadOnlyList<string> test = cmd.Exec is not null ? ["CMD", .. cmd.Exec] : ["CMD-SHELL", cmd.Shell!];
        TimeSpan? Dur(string name)
        {
            var f = flags.FirstOrDefault(x => x.Name == name);
            if (f.Name is null) return null;
            if (f.Value is null || !TryParseDuration(f.Value, out TimeSpan d))
                throw new ContainerfileException(f.Pos, $"--{name}: \"{f.Value}\" is not a duration (e.g. 30s, 1m30s, 500ms)");
            if (d != TimeSpan.Zero && d < TimeSpan.FromMilliseconds(1))
                throw new ContainerfileException(f.Pos, $"--{name} cannot be less than 1ms");
            return d;
        }
        int? retries = null;
        var r = flags.FirstOrDefault(x => x.Name == "retries");
        if (r.Name is not null)
        {
            if (!int.TryParse(r.Value, NumberStyles.None, CultureInfo.InvariantCulture, out int n)) throw new ContainerfileException(r.Pos, $"--retries: \"{r.Value}\" is not a number");
            retries = n;
        }
        return new HealthcheckInstruction
        {
            Pos = pos, Keyword = keyword, Text = Normalize(text), Test = test, Interval = Dur("interval"), Timeout = Dur("timeout"),
            StartPeriod = Dur("start-period"), StartInterval = Dur("start-interval"), Retries = retries,
        };
    }

    /// <summary>Go's time.ParseDuration for what HEALTHCHECK takes: sequences of number + unit (ns, us, ms, s, m, h).</summary>
    public static bool TryParseDuration(string s, out TimeSpan result)
    {
        result = TimeSpan.Zero;
        if (s == "0") return true;
        var m = Regex.Match(s, @"^((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$");
        if (!m.Success) return false;
        double ticks = 0;
        foreach (Match p in Regex.Matches(s, @"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"))
        {
            double v = double.Parse(p.Groups[1].Value, CultureInfo.InvariantCulture);
            ticks += p.Groups[2].Value switch
            {
                "ns" => v / 100, "us" or "µs" => v * 10, "ms" => v * TimeSpan.TicksPerMillisecond,
                "s" => v * TimeSpan.TicksPerSecond, "m" => v * TimeSpan.TicksPerMinute, _ => v * TimeSpan.TicksPerHour,
            };
        }
        result = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    /// <summary>Exec form when the arguments are a JSON array of strings, else shell form (as Docker: a malformed
    /// array is a shell command). A RUN that is only a here-document runs the document as the script.</summary>
    private static CommandForm Command(string rest, IReadOnlyList<Heredoc> heredocs)
    {
        if (TryJsonArray(rest) is { } exec) return new CommandForm(exec, null);
        return new CommandForm(null, rest);
    }

    private static List<string>? TryJsonArray(string rest)
    {
        if (!rest.StartsWith('[') || !rest.EndsWith(']')) return null;
        try
        {
            using var doc = JsonDocument.Parse(rest);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) return null;
            var list = new List<string>();
            foreach (JsonElement e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String) return null;
                list.Add(e.GetString()!);
            }
            return list;
        }
        catch (JsonException) { return null; }
    }

    /// <summary>ENV/LABEL arguments: <c>k=v k2="v 2"</c>, or the legacy <c>NAME value with spaces</c>.</summary>
    private static List<KeyValuePair<string, string>> NameValues(string rest, char escape, string keyword, SourcePos pos)
    {
        var words = SplitRaw(rest, escape);
        var pairs = new List<KeyValuePair<string, string>>();
        if (!words[0].Contains('='))
        {
            // Legacy form: the first word is the name, everything after the whitespace is the value.
            int sp = rest.IndexOfAny([' ', '\t']);
            string value = sp < 0 ? "" : rest[sp..].Trim();
            if (value.Length == 0) throw new ContainerfileException(pos, $"{keyword} {words[0]}: missing value (use {keyword} {words[0]}=VALUE)");
            pairs.Add(new(words[0], value));
            return pairs;
        }
        foreach (string w in words)
        {
            int eq = w.IndexOf('=');
            if (eq < 0) throw new ContainerfileException(pos, $"{keyword}: can't find = in \"{w}\"; must be of the form name=value");
            if (eq == 0) throw new ContainerfileException(pos, $"{keyword} names can not be blank");
            pairs.Add(new(w[..eq], w[(eq + 1)..]));
        }
        return pairs;
    }

    /// <summary>Splits on whitespace outside quotes; quotes and escapes are kept (expansion removes them).</summary>
    public static List<string> SplitRaw(string s, char escape)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        char quote = '\0';
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == escape && i + 1 < s.Length && quote != '\'')
            {
                cur.Append(c).Append(s[i + 1]);
                i++;
                continue;
            }
            if (quote != '\0')
            {
                if (c == quote) quote = '\0';
                cur.Append(c);
                continue;
            }
            if (c is '"' or '\'') { quote = c; cur.Append(c); continue; }
            if (char.IsWhiteSpace(c))
            {
                if (cur.Length > 0) words.Add(cur.ToString());
                cur.Clear();
                continue;
            }
            cur.Append(c);
        }
        if (cur.Length > 0) words.Add(cur.ToString());
        return words;
    }

    /// <summary>The instruction as progress and history show it: keyword upper-case, whitespace runs collapsed.</summary>
    private static string Normalize(string text)
    {
        string t = text.Trim();
        int sp = 0;
        while (sp < t.Length && !char.IsWhiteSpace(t[sp])) sp++;
        return t[..sp].ToUpperInvariant() + t[sp..];
    }
}
