using System.CommandLine;
using System.CommandLine.Help;
using System.Text;

namespace Vessel.Cli;

/// <summary>Help that reads like docker's: "Usage:  vessel ps [OPTIONS]", the description, "Aliases:" (its own aliases and
/// the same command elsewhere in the tree: `ps` is `container ls`), the subcommands of a management command, and
/// "Options:" in pflag's layout (short and long names, a type word, "(default …)"). Global options (-H, -D) are shown by
/// `vessel --help` only, as docker does.</summary>
internal sealed class DockerHelp : System.CommandLine.Invocation.SynchronousCommandLineAction
{
    public override bool ClearsParseErrors => true;

    /// <summary>Commands that are the same command under another name (beyond the alias a command carries itself).</summary>
    private static readonly string[][] Same =
    [
        ["vessel ps", "vessel container ls"],
        ["vessel rm", "vessel container rm"],
        ["vessel images", "vessel image ls"],
        ["vessel rmi", "vessel image rm"],
        ["vessel info", "vessel system info"],
        ["vessel events", "vessel system events"],
    ];

    /// <summary>Makes every --help of the tree use this help.</summary>
    public static void Install(RootCommand root)
    {
        foreach (HelpOption h in root.Options.OfType<HelpOption>()) h.Action = new DockerHelp();
    }

    public override int Invoke(ParseResult parseResult)
    {
        Command cmd = parseResult.CommandResult.Command;
        Console.Out.Write(cmd is RootCommand ? Program.RootHelp.TrimStart('\n') + "\n" : Render(cmd));
        return 0;
    }

    internal static string PathOf(Command c)
    {
        var names = new List<string>();
        for (Symbol? s = c; s is Command cmd; s = cmd.Parents.FirstOrDefault())
            names.Insert(0, cmd is RootCommand ? "vessel" : cmd.Name);
        return string.Join(' ', names);
    }

    private static Command RootOf(Command c)
    {
        Command r = c;
        while (r.Parents.FirstOrDefault() is Command p) r = p;
        return r;
    }

    public static string Render(Command cmd)
    {
        string path = PathOf(cmd);
        bool group = cmd.Subcommands.Count > 0 && cmd.Arguments.Count == 0;
        var sb = new StringBuilder("\n");
        sb.Append("Usage:  ").Append(path);
        if (group) sb.Append(" COMMAND");
        else
        {
            if (Visible(cmd).Any()) sb.Append(" [OPTIONS]");
            foreach (Argument a in cmd.Arguments.Where(a => !a.Hidden)) sb.Append(' ').Append(ArgUsage(a));
        }
        sb.Append("\n\n");
        string description = cmd.Description ?? "";
        sb.Append(description.Trim()).Append("\n");

        var forms = Forms(cmd, path);
        if (forms.Count > 1) sb.Append("\nAliases:\n  ").Append(string.Join(", ", forms)).Append('\n');

        if (group)
        {
            var subs = cmd.Subcommands.Where(s => !s.Hidden).ToList();
            int w = Math.Max(12, subs.Max(s => s.Name.Length) + 2);
            sb.Append("\nCommands:\n");
            foreach (Command s in subs)
                sb.Append("  ").Append(s.Name.PadRight(w)).Append(FirstLine(s.Description)).Append('\n');
        }

        var options = Visible(cmd).ToList();
        if (options.Count > 0)
        {
            var rows = options.Select(o => (Left: OptionLeft(o), Right: OptionRight(o))).ToList();
            int w = rows.Max(r => r.Left.Length) + 3;
            sb.Append("\nOptions:\n");
            foreach (var (left, right) in rows)
            {
                string[] lines = right.Split('\n');
                sb.Append("  ").Append(left.PadRight(w)).Append(lines[0]).Append('\n');
                foreach (string more in lines.Skip(1)) sb.Append(new string(' ', w + 2)).Append(more.Trim()).Append('\n');
            }
        }
        if (group) sb.Append($"\nRun '{path} COMMAND --help' for more information on a command.\n");
        return sb.ToString();
    }

    private static IEnumerable<Option> Visible(Command cmd) =>
        cmd.Options.Where(o => !o.Hidden && !o.Recursive && o is not HelpOption && o is not VersionOption);

    private static string FirstLine(string? s) => (s ?? "").Split('\n')[0].Trim();

    private static string ArgUsage(Argument a)
    {
        string name = a.Name;
        if (a.Arity.MaximumNumberOfValues > 1)
            return a.Arity.MinimumNumberOfValues == 0 ? $"[{name}...]" : $"{name} [{name}...]";
        return a.Arity.MinimumNumberOfValues == 0 ? $"[{name}]" : name;
    }

    /// <summary>The names of this command: its path, its aliases, and the same command elsewhere in the tree.</summary>
    private static List<string> Forms(Command cmd, string path)
    {
        string parent = path[..path.LastIndexOf(' ')];
        var forms = new List<string> { path };
        forms.AddRange(cmd.Aliases.Select(a => parent + " " + a));
        Command root = RootOf(cmd);
        string[] words = path.Split(' ');
        // `vessel container X` is also `vessel X` (and the other way round), for container and image commands.
        if (words.Length == 3 && words[1] is "container" or "image" && root.Subcommands.Any(s => s.Name == words[2]))
            forms.Add("vessel " + words[2]);
        if (words.Length == 2)
            foreach (string g in new[] { "container", "image" })
                if (root.Subcommands.FirstOrDefault(s => s.Name == g) is { } grp && grp.Subcommands.FirstOrDefault(s => s.Name == words[1]) is { } same)
                {
                    forms.Add($"vessel {g} {same.Name}");
                    forms.AddRange(same.Aliases.Select(a => $"vessel {g} {a}"));
                }
        foreach (string[] set in Same.Where(s => s.Any(forms.Contains)))
            foreach (string other in set)
            {
                if (!forms.Contains(other)) forms.Add(other);
                // and that command's own aliases
                string[] ow = other.Split(' ');
                Command? c = root;
                foreach (string w in ow.Skip(1)) c = c?.Subcommands.FirstOrDefault(s => s.Name == w);
                if (c is not null)
                    foreach (string a in c.Aliases)
                    {
                        string f = string.Join(' ', ow[..^1]) + " " + a;
                        if (!forms.Contains(f)) forms.Add(f);
                    }
            }
        // docker lists the longest (management) forms first and the short top-level one last.
        return forms.Distinct().OrderByDescending(f => f.Split(' ').Length).ThenBy(f => f == path ? 0 : 1).ToList();
    }

    private static string OptionLeft(Option o)
    {
        string? shortName = o.Aliases.Concat([o.Name]).FirstOrDefault(a => a.Length == 2 && a[0] == '-' && a[1] != '-');
        string longName = o.Name.StartsWith("--", StringComparison.Ordinal) ? o.Name : o.Aliases.FirstOrDefault(a => a.StartsWith("--", StringComparison.Ordinal)) ?? o.Name;
        string type = TypeWord(o);
        return (shortName is null ? "    " : shortName + ", ") + longName + (type.Length > 0 ? " " + type : "");
    }

    private static string TypeWord(Option o)
    {
        if (o.HelpName is { Length: > 0 } h) return h;
        Type t = Nullable.GetUnderlyingType(o.ValueType) ?? o.ValueType;
        if (t == typeof(bool)) return "";
        if (t == typeof(string[]) || t == typeof(List<string>)) return "list";
        if (t == typeof(int) || t == typeof(long)) return "int";
        if (t == typeof(double) || t == typeof(decimal)) return "decimal";
        if (o.Name is "--memory" or "--memory-swap" or "--shm-size") return "bytes";
        return "string";
    }

    private static string OptionRight(Option o)
    {
        string d = (o.Description ?? "").Trim();
        if (!o.HasDefaultValue || d.Contains("(default", StringComparison.Ordinal)) return d;
        object? v;
        try { v = o.GetDefaultValue(); }
        catch (InvalidOperationException) { return d; }
        string? shown = v switch
        {
            bool b => b ? "true" : null,
            string s when s.Length > 0 => $"\"{s}\"",
            int i when i != 0 => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
            long l when l != 0 => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        };
        return shown is null ? d : $"{d} (default {shown})";
    }
}
