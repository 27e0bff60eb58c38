using System.CommandLine;
using System.Formats.Tar;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Vessel.Api;
using Vessel.Images.Build.Containerfile;

namespace Vessel.Cli;

/// <summary><c>vessel build</c>: sends the context as a tar stream (what .dockerignore excludes is left out
/// here, as docker does) and prints the daemon's progress like BuildKit's plain mode, on stderr.</summary>
internal sealed partial class Commands
{
    /// <summary>The name under which a Containerfile read from stdin travels inside the context.</summary>
    internal const string StdinContainerfile = ".vessel-containerfile-stdin";

    private Command BuildCmd()
    {
        var tags = new Option<string[]>("--tag", "-t") { Description = "Name and optionally a tag (name:tag); repeatable", AllowMultipleArgumentsPerToken = false };
        var file = new Option<string?>("--file", "-f") { Description = "The Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile; '-' reads it from stdin)" };
        var buildArgs = new Option<string[]>("--build-arg") { Description = "Set a build-time variable (KEY=VALUE, or KEY to take it from the environment); repeatable" };
        var target = new Option<string?>("--target") { Description = "Build this stage (and what it needs) and stop" };
        var noCache = new Option<bool>("--no-cache") { Description = "Do not use the build cache" };
        var pull = new Option<bool>("--pull") { Description = "Always pull base images, even when present" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print only the image ID" };
        var iidfile = new Option<string?>("--iidfile") { Description = "Write the image ID to this file" };
        var labels = new Option<string[]>("--label") { Description = "Set a label on the image (KEY=VALUE); repeatable" };
        var context = new Argument<string>("CONTEXT") { Description = "The build context: a directory ('-': no context, the Containerfile on stdin)" };
        var cmd = new Command("build", "Build an image from a Containerfile") { tags, file, buildArgs, target, noCache, pull, quiet, iidfile, labels, context };
        cmd.SetAction(async (pr, ct) =>
        {
            string ctxArg = pr.GetValue(context)!;
            string? f = pr.GetValue(file);
            string? stdinText = null;
            string? dir = null;
            if (ctxArg == "-")
            {
                if (f is not null && f != "-") throw new CliException("with CONTEXT '-' the Containerfile comes from stdin; -f cannot name another");
                stdinText = Console.In.ReadToEnd();
            }
            else
            {
                dir = Path.GetFullPath(ctxArg);
                if (!Directory.Exists(dir)) throw new CliException($"unable to prepare context: path \"{ctxArg}\" not found");
                if (f == "-") stdinText = Console.In.ReadToEnd();
            }
            var q = new List<string>();
            foreach (string t in pr.GetValue(tags) ?? []) q.Add("t=" + Uri.EscapeDataString(t));
            foreach (string a in pr.GetValue(buildArgs) ?? [])
            {
                string arg = a;
                if (!a.Contains('=') && Environment.GetEnvironmentVariable(a) is string v) arg = a + "=" + v;
                q.Add("buildarg=" + Uri.EscapeDataString(arg));
            }
            foreach (string l in pr.GetValue(labels) ?? [])
            {
                if (!l.Contains('=')) throw new CliException($"invalid label \"{l}\": expected KEY=VALUE");
                q.Add("label=" + Uri.EscapeDataString(l));
            }
            // -f is relative to the current directory (docker's rule); inside the context it travels as its path there.
            string? dockerfileInContext = null;
            if (stdinText is not null)
            {
                dockerfileInContext = StdinContainerfile;
                q.Add("stdin=1");
            }
            else if (f is not null)
            {
                string full = Path.GetFullPath(f);
                if (!File.Exists(full)) throw new CliException($"unable to prepare context: the Containerfile {f} does not exist");
                string rel = Path.GetRelativePath(dir!, full);
                if (rel.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(rel))
                {
                    // Outside the context: sent inside it under a private name, as docker does.
                    stdinText = File.ReadAllText(full);
                    dockerfileInContext = StdinContainerfile;
                    q.Add("stdin=1");
                }
                else dockerfileInContext = rel.Replace('\\', '/');
            }
            if (dockerfileInContext is not null) q.Add("f=" + Uri.EscapeDataString(dockerfileInContext));
            if (pr.GetValue(target) is { Length: > 0 } tg) q.Add("target=" + Uri.EscapeDataString(tg));
            if (pr.GetValue(noCache)) q.Add("nocache=1");
            if (pr.GetValue(pull)) q.Add("pull=1");
            bool quietOut = pr.GetValue(quiet);

            using Client c = Connect(pr);
            var body = new ContextContent(dir, stdinText, dockerfileInContext);
            using HttpResponseMessage resp = await c.Stream(HttpMethod.Post, "v1/build?" + string.Join('&', q), body, ct);
            await using Stream stream = await resp.Content.ReadAsStreamAsync(ct);
            using var reader = new StreamReader(stream);
            var printer = new PlainProgress(Console.Error, quietOut);
            OperationInfo? final = null;
            while (await reader.ReadLineAsync(ct) is string line)
            {
                if (line.Length == 0) continue;
                if (Parse(line, out ProgressEvent? e, out final)) break;
                printer.Print(e!);
            }
            if (final is null) throw new CliException("the daemon closed the build stream before the build ended");
            if (final.Status != OperationStatus.Succeeded)
            {
                printer.Failed(final.Error?.Message ?? final.Status);
                throw new CliException(final.Error?.Message is { Length: > 0 } m ? m : $"build {final.Status}", 1);
            }
            string id = final.Result is JsonElement r && r.TryGetProperty("id", out JsonElement idEl) ? idEl.GetString() ?? "" : "";
            if (pr.GetValue(iidfile) is { Length: > 0 } iid) File.WriteAllText(iid, id);
            if (quietOut) Console.Out.WriteLine(id);
            return 0;
        });
        return cmd;
    }

    /// <summary>BuildKit's plain progress: <c>#N name</c>, <c>#N 0.123 output</c>, <c>#N CACHED</c>, <c>#N DONE 0.4s</c>.</summary>
    internal sealed class PlainProgress(TextWriter w, bool quiet)
    {
        private int _open;

        public void Print(ProgressEvent e)
        {
            if (quiet) return;
            string n = e.Item ?? "";
            switch (e.Action)
            {
                case "step": w.WriteLine($"{n} {e.Message}"); _open = Num(n); break;
                case "log": w.WriteLine($"{n} {(e.Current / 1000.0).ToString("0.000", CultureInfo.InvariantCulture)} {e.Message}"); break;
                case "cached": w.WriteLine($"{n} CACHED"); w.WriteLine(); _open = 0; break;
                case "done": w.WriteLine($"{n} DONE {(e.Current / 1000.0).ToString("0.0", CultureInfo.InvariantCulture)}s"); w.WriteLine(); _open = 0; break;
                case "warning": w.WriteLine($"WARNING: {e.Message}"); break;
                default: w.WriteLine($"{n} {e.Action} {e.Message}"); break;
            }
        }

        public void Failed(string message)
        {
            if (!quiet && _open > 0) w.WriteLine($"#{_open} ERROR: {message}");
        }

        private static int Num(string item) => item.StartsWith('#') && int.TryParse(item.AsSpan(1), out int k) ? k : 0;
    }

    /// <summary>The context as a tar stream written straight into the request (chunked): every file of the
    /// directory that .containerignore, else .dockerignore, does not exclude (the Containerfile and that file
    /// always go), plus the Containerfile from stdin under its private name.</summary>
    private sealed class ContextContent(string? dir, string? stdinText, string? dockerfileInContext) : HttpContent
    {
        protected override bool TryComputeLength(out long length) { length = 0; return false; }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => Task.Run(() => Write(stream));

        private void Write(Stream output)
        {
            using var tar = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
            if (dir is not null)
            {
                IgnoreRules rules = new();
                string? ignoreName = IgnoreRules.FileIn(dir);
                if (ignoreName is not null)
                {
                    try { rules = IgnoreRules.Parse(File.ReadAllText(Path.Combine(dir, ignoreName))); }
                    catch (FormatException e) { throw new CliException($"{ignoreName}: {e.Message}"); }
                }
                WriteDir(tar, dir, "", rules, ignoreName);
            }
            if (stdinText is not null)
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, dockerfileInContext!)
                {
                    DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(stdinText)),
                    Mode = (UnixFileMode)0x1a4,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                };
                tar.WriteEntry(entry);
            }
        }

        private void WriteDir(TarWriter tar, string root, string rel, IgnoreRules rules, string? ignoreName)
        {
            string host = rel.Length == 0 ? root : Path.Combine(root, rel);
            foreach (string path in Directory.EnumerateFileSystemEntries(host).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(path);
                string r = rel.Length == 0 ? name : rel + "/" + name;
                var fi = new FileInfo(path);
                bool isDir = fi.LinkTarget is null && Directory.Exists(path);
                bool always = r == ignoreName || r == dockerfileInContext;
                bool ignored = !always && rules.IsIgnored(r);
                if (ignored && !(isDir && rules.HasExclusions)) continue;
                if (!ignored) tar.WriteEntry(path, isDir ? r + "/" : r);
                if (isDir) WriteDir(tar, root, r, rules, ignoreName);
            }
        }
    }
}
