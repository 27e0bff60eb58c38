namespace Vessel.Runc;

/// <summary>A flag a command accepts: its names (long first) and whether it takes a value.</summary>
public sealed record Flag(string[] Names, bool TakesValue = false, bool Repeats = false)
{
    public static Flag Bool(params string[] names) => new(names);
    public static Flag Value(params string[] names) => new(names, TakesValue: true);
    public static Flag List(params string[] names) => new(names, TakesValue: true, Repeats: true);
}

/// <summary>Parsed flags and positional arguments.</summary>
public sealed class ParsedArgs
{
    private readonly Dictionary<string, List<string>> _values = new();

    public List<string> Positional { get; } = [];

    public void Add(string name, string value)
    {
        if (!_values.TryGetValue(name, out var list)) _values[name] = list = [];
        list.Add(value);
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string? Value(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public bool Bool(string name) => Value(name) is { } v && v is not ("false" or "0");

    public int Int(string name, int fallback)
    {
        var v = Value(name);
        if (v is null) return fallback;
        return int.TryParse(v, out var n) ? n : throw new UsageException($"invalid value \"{v}\" for flag --{name}");
    }
}

public sealed class UsageException(string message) : Exception(message);

/// <summary>Parses arguments the way runc's Go flag library does, because callers (containerd, podman,
/// CRI-O, runtime-tools) were written against it: `--flag value`, `--flag=value`, `-flag value`
/// (single dash long names), short aliases, booleans as `--flag` or `--flag=false`, and parsing stops at
/// the first positional argument or `--`.</summary>
public static class CommandLine
{
    public static ParsedArgs Parse(IReadOnlyList<string> args, IReadOnlyList<Flag> flags, bool stopAtPositional = true)
    {
        var result = new ParsedArgs();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                result.Positional.AddRange(args.Skip(i + 1));
                break;
            }
            if (arg.Length < 2 || arg[0] != '-')
            {
                if (stopAtPositional)
                {
                    result.Positional.AddRange(args.Skip(i));
                    break;
                }
                result.Positional.Add(arg);
                continue;
            }
            var body = arg.TrimStart('-');
            string? inline = null;
            var eq = body.IndexOf('=');
            if (eq >= 0)
            {
                inline = body[(eq + 1)..];
                body = body[..eq];
            }
            var flag = flags.FirstOrDefault(f => f.Names.Contains(body))
                ?? throw new UsageException($"flag provided but not defined: -{body}");
            var name = flag.Names[0];
            if (flag.TakesValue)
            {
                var value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"flag needs an argument: -{body}"));
                result.Add(name, value);
            }
            else
            {
                if (inline is not null && inline is not ("true" or "false" or "1" or "0"))
                    throw new UsageException($"invalid boolean value \"{inline}\" for -{body}");
                result.Add(name, inline ?? "true");
            }
        }
        return result;
    }
}
