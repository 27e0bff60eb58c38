using System.CommandLine;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>Flags of run/create read by the client (--env-file, as docker's client reads it) or passed through
/// (--log-driver, --log-opt: validated by the daemon, which owns the log files).</summary>
internal sealed partial class Commands
{
    private static readonly string[] RunValueFlags = ["--env-file", "--log-driver", "--log-opt"];

    private sealed class RunFlags
    {
        public readonly Option<string[]> EnvFile = new("--env-file") { Description = "Read in a file of environment variables", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string?> LogDriver = new("--log-driver") { Description = "Logging driver for the container (json-file)" };
        public readonly Option<string[]> LogOpt = new("--log-opt") { Description = "Log driver options (max-size=10m, max-file=3)", Arity = ArgumentArity.ZeroOrMore };

        public void AddTo(Command cmd)
        {
            foreach (Option o in new Option[] { EnvFile, LogDriver, LogOpt }) cmd.Options.Add(o);
        }

        public ContainerCreateRequest Apply(ParseResult pr, ContainerCreateRequest req)
        {
            var fromFiles = new List<string>();
            foreach (string file in pr.GetValue(EnvFile) ?? []) fromFiles.AddRange(ReadEnvFile(file));
            Dictionary<string, string>? opts = null;
            foreach (string o in pr.GetValue(LogOpt) ?? [])
            {
                int eq = o.IndexOf('=');
                if (eq <= 0) throw new CliException($"invalid key/value pair format in log options: {o}");
                (opts ??= [])[o[..eq]] = o[(eq + 1)..];
            }
            return req with
            {
                // -e after --env-file, so -e wins for a name given in both (docker's order).
                Env = fromFiles.Count > 0 ? [.. fromFiles, .. req.Env ?? []] : req.Env,
                LogDriver = pr.GetValue(LogDriver), LogOptions = opts,
            };
        }

        /// <summary>docker's env file: KEY=VALUE lines taken as they are (no quotes, no expansion), a bare KEY takes the
        /// client's value (dropped when unset), blank lines and lines starting with # are skipped.</summary>
        private static IEnumerable<string> ReadEnvFile(string file)
        {
            string[] lines;
            try { lines = File.ReadAllLines(file); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new CliException($"open {file}: no such file or directory"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CliException($"open {file}: {(e is UnauthorizedAccessException ? "permission denied" : e.Message)}"); }
            var env = new List<string>();
            foreach (string raw in lines)
            {
                string line = raw.TrimStart();
                if (line.Length == 0 || line.StartsWith('#')) continue;
                int eq = line.IndexOf('=');
                string key = eq < 0 ? line : line[..eq];
                if (key.Length == 0) throw new CliException($"{file}: no variable name on line '{raw}'");
                if (key.Any(char.IsWhiteSpace)) throw new CliException($"{file}: variable '{key}' contains whitespaces");
                if (eq >= 0) env.Add(line);
                else if (Environment.GetEnvironmentVariable(key) is { } v) env.Add($"{key}={v}");
            }
            return env;
        }
    }
}
