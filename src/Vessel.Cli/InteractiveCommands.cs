using System.CommandLine;
using Vessel.Api;
using Vessel.Linux;

namespace Vessel.Cli;

/// <summary>Interactive containers: run/start attached (-i, -t, -a), attach, and exec streams (-i, -t, -d), with
/// docker's detach keys (ctrl-p,ctrl-q unless --detach-keys) and exit codes.</summary>
internal sealed partial class Commands
{
    private static Option<string?> DetachKeysOption() =>
        new("--detach-keys") { Description = "Override the key sequence for detaching a container (default \"ctrl-p,ctrl-q\")" };

    /// <summary>docker refuses -it when stdin is not a terminal, before anything is created.</summary>
    private static void CheckTty(bool stdin, bool tty)
    {
        if (stdin && tty && !Terminal.IsTerminal(0)) throw new CliException("the input device is not a TTY");
    }

    private static string StreamQuery(bool stdin, string? detachKeys, bool tty)
    {
        var q = new List<string> { "stdin=" + (stdin ? "true" : "false"), "stdout=true", "stderr=true" };
        if (!string.IsNullOrEmpty(detachKeys)) q.Add("detachKeys=" + Uri.EscapeDataString(detachKeys));
        if (tty && StdioConnection.TerminalSize() is { } size) { q.Add($"h={size.Rows}"); q.Add($"w={size.Columns}"); }
        return string.Join('&', q);
    }

    private static Option<bool> SigProxyOption() =>
        new("--sig-proxy") { Description = "Proxy received signals to the process (without a tty)", DefaultValueFactory = _ => true };

    /// <summary>Attaches (before the start, when <paramref name="start"/>: no output is missed), streams until the end and
    /// returns the container's exit code; 0 after the detach keys (the container goes on). Signals: see SignalForwarding.</summary>
    private static async Task<(int Code, bool Detached)> AttachAndRun(Client c, string id, bool stdin, bool tty, string? detachKeys, bool start, bool sigProxy, CancellationToken ct)
    {
        await using StdioConnection s = await StdioConnection.Open(c, $"v1/containers/{Esc(id)}/attach?{StreamQuery(stdin, detachKeys, tty)}", ct);
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var signals = SignalForwarding.Start(c, id, sigProxy && !tty, stream);
        if (start) await StartContainer(c, id, ct);
        StdioEndMessage end = await s.Run(stdin, tty, stream.Token);
        if (end.Error is not null) throw new CliException(end.Error);
        return end.Detached ? (0, true) : (end.ExitCode ?? 0, false);
    }

    private Command AttachCmd()
    {
        var keys = DetachKeysOption();
        var noStdin = new Option<bool>("--no-stdin") { Description = "Do not attach STDIN" };
        var sigProxy = SigProxyOption();
        var id = new Argument<string>("CONTAINER");
        var cmd = new Command("attach", "Attach local standard input, output, and error streams to a running container") { keys, noStdin, sigProxy, id };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            ContainerInspect i = await c.Get($"v1/containers/{Esc(pr.GetValue(id)!)}", ContainerJson.Default.ContainerInspect, ct);
            if (!i.State.Running) throw new CliException("You cannot attach to a stopped container, start it first");
            bool stdin = i.Config.OpenStdin && !pr.GetValue(noStdin);
            CheckTty(stdin, i.Config.Tty);
            return (await AttachAndRun(c, i.Id, stdin, i.Config.Tty, pr.GetValue(keys), start: false, pr.GetValue(sigProxy), ct)).Code;
        });
        return cmd;
    }

    /// <summary>`start -a [-i]`: one container, attached before it starts.</summary>
    private static async Task<int> StartAttached(Client c, string id, bool stdin, string? detachKeys, CancellationToken ct)
    {
        ContainerInspect i = await c.Get($"v1/containers/{Esc(id)}", ContainerJson.Default.ContainerInspect, ct);
        stdin &= i.Config.OpenStdin;
        CheckTty(stdin, i.Config.Tty);
        return (await AttachAndRun(c, i.Id, stdin, i.Config.Tty, detachKeys, start: !i.State.Running, sigProxy: true, ct)).Code;
    }

    /// <summary>exec through an exec instance: -d starts it and returns; otherwise its stdio is streamed and its exit code
    /// is ours (126/127 when the command cannot be run).</summary>
    private static async Task<int> ExecStream(Client c, string container, ExecCreateRequest req, bool detach, string? detachKeys, CancellationToken ct)
    {
        CheckTty(req.OpenStdin, req.Tty);
        ExecCreateResponse e = await c.Send(HttpMethod.Post, $"v1/containers/{Esc(container)}/execs",
            Client.Json(req, StdioJson.Default.ExecCreateRequest), StdioJson.Default.ExecCreateResponse, ct);
        if (detach)
        {
            await ExecFailure(c, e.Id, () => c.SendNoContent(HttpMethod.Post, $"v1/execs/{e.Id}/start?detach=true", null, ct), ct);
            return 0;
        }
        StdioConnection? s = null;
        await ExecFailure(c, e.Id, async () => s = await StdioConnection.Open(c, $"v1/execs/{e.Id}/start?{StreamQuery(req.OpenStdin, detachKeys, req.Tty)}", ct), ct);
        await using (s!)
        {
            StdioEndMessage end = await s!.Run(req.OpenStdin, req.Tty, ct);
            if (end.Error is not null) throw new CliException(end.Error);
            return end.Detached ? 0 : end.ExitCode ?? 0;
        }
    }

    /// <summary>A start refused because the command cannot be run exits 126/127, as docker exec does.</summary>
    private static async Task ExecFailure(Client c, string execId, Func<Task> start, CancellationToken ct)
    {
        try { await start(); }
        catch (CliException e)
        {
            int code = CliException.Failure;
            try
            {
                ExecInspect i = await c.Get($"v1/execs/{execId}", StdioJson.Default.ExecInspect, ct);
                if (i.ExitCode is 126 or 127) code = i.ExitCode.Value;
            }
            catch (CliException) { }
            throw new CliException(e.Message, code);
        }
    }
}
