using System.Text;
using Vessel.Linux;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime;

/// <summary>Runs the hooks that belong to the runtime's namespaces (prestart, createRuntime, poststart,
/// poststop): the hook's own argv (args[0] may differ from path), its env, the state JSON on stdin,
/// killed after its timeout.</summary>
public static class Hooks
{
    /// <summary>Runs every hook even when one fails, warning for each failure: what the spec asks of
    /// poststart and poststop hooks.</summary>
    public static void RunAll(IEnumerable<HookSpec>? hooks, string phase, string stateJson, Action<string> warn)
    {
        foreach (var hook in hooks ?? [])
        {
            try { Run([hook], phase, stateJson); }
            catch (RuntimeException e) { warn(e.Message); }
        }
    }

    /// <summary>Runs the hooks in order; the first failure stops them and is thrown.</summary>
    public static void Run(IEnumerable<HookSpec>? hooks, string phase, string stateJson)
    {
        foreach (var hook in hooks ?? [])
        {
            var (exit, output) = RunOne(hook, stateJson);
            if (exit != 0)
                throw new RuntimeException($"error running {phase} hook {hook.Path}: " +
                    (exit == 128 + Signals.SIGKILL && hook.Timeout is > 0 ? $"timed out after {hook.Timeout}s" : $"exit status {exit}") +
                    (output.Length > 0 ? $", output: {output.Trim()}" : ""));
        }
    }

    private static (int Exit, string Output) RunOne(HookSpec hook, string stateJson)
    {
        var (stdinRead, stdinWrite) = SafeFd.Pipe();
        using var output = SafeFd.MemoryFile("hook-output", []);
        int pid;
        using (stdinRead)
        {
            var args = hook.Args is { Count: > 0 } ? hook.Args : [hook.Path];
            try
            {
                pid = Spawn.Start(hook.Path, args, hook.Env ?? [], new Dictionary<int, SafeFd> { [0] = stdinRead, [1] = output, [2] = output });
            }
            catch (LinuxException e)
            {
                stdinWrite.Dispose();
                throw new RuntimeException($"cannot run hook {hook.Path}: {Errno.Describe(e.ErrorNumber)}");
            }
        }
        using (stdinWrite)
        {
            try { stdinWrite.WriteAll(Encoding.UTF8.GetBytes(stateJson)); }
            catch (LinuxException) { } // a hook need not read its stdin
        }
        var deadline = hook.Timeout is > 0 ? Environment.TickCount64 + hook.Timeout.Value * 1000L : long.MaxValue;
        int? exit;
        while ((exit = Processes.TryWaitExit(pid)) is null)
        {
            if (Environment.TickCount64 > deadline)
            {
                Processes.Kill(pid, Signals.SIGKILL);
                exit = Processes.WaitExit(pid);
                break;
            }
            Thread.Sleep(5);
        }
        return (exit.Value, ReadAll(output));
    }

    private static string ReadAll(SafeFd memfd)
    {
        using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(memfd.DangerousGetHandle(), false), FileAccess.Read);
        stream.Position = 0;
        var text = new StreamReader(stream).ReadToEnd();
        return text.Length > 4096 ? text[..4096] : text;
    }
}
