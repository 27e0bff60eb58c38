using Vessel.Linux.Interop;

namespace Vessel.Linux;

/// <summary>Processes by pid, guarded against pid reuse: a pid is only taken for "our" process when its
/// start time (field 22 of /proc/PID/stat, in clock ticks since boot) is the one recorded at creation.</summary>
public static unsafe class Processes
{
    /// <summary>The start time of <paramref name="pid"/>, or null if there is no such process.</summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        // comm (field 2) may contain spaces and parentheses: parse after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return ulong.Parse(fields[19]); // field 22 overall; fields[0] is field 3
    }

    /// <summary>The state letter (R, S, Z, T, ...) or null if gone.</summary>
    public static char? State(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2];
        }
        catch (IOException) { return null; }
    }

    /// <summary>True when <paramref name="pid"/> is alive (not a zombie) and still the process started at <paramref name="startTime"/>.</summary>
    public static bool IsAlive(int pid, ulong startTime) =>
        pid > 0 && StartTime(pid) == startTime && State(pid) is not ('Z' or 'X' or null);

    /// <summary>Sends a signal through a pidfd after checking the start time, so a reused pid is never hit.</summary>
    public static void Signal(int pid, ulong startTime, int signal)
    {
        var pidfd = (int)Libc.Syscall(Libc.SYS_pidfd_open, pid, 0, 0, 0);
        if (pidfd < 0)
        {
            if (Errno.Last == Errno.ESRCH) throw Errno.Exception(Errno.ESRCH, "kill");
            Errno.Check(pidfd, "pidfd_open");
        }
        using var fd = new SafeFd(pidfd);
        if (StartTime(pid) != startTime) throw Errno.Exception(Errno.ESRCH, "kill");
        Errno.Check(Libc.Syscall(Libc.SYS_pidfd_send_signal, pidfd, signal, 0, 0), "pidfd_send_signal");
    }

    /// <summary>kill(2) without the start-time guard, for pids just read from a cgroup.</summary>
    public static bool Kill(int pid, int signal) => Libc.Kill(pid, signal) == 0;

    /// <summary>Waits for a child; returns its shell-style exit status (code, or 128+signal).</summary>
    public static int WaitExit(int pid)
    {
        int status;
        while (true)
        {
            var r = Libc.WaitPid(pid, &status, Libc.WALL);
            if (r < 0 && Errno.Last == Errno.EINTR) continue;
            Errno.Check(r, "waitpid");
            return ExitStatus(status);
        }
    }

    /// <summary>Non-blocking wait: the exit status if the child ended, null if it still runs.</summary>
    public static int? TryWaitExit(int pid)
    {
        int status;
        var r = Libc.WaitPid(pid, &status, Libc.WNOHANG | Libc.WALL);
        if (r == 0) return null;
        if (r < 0) return Errno.Last == Errno.ECHILD ? -1 : Errno.Check(r, "waitpid");
        return ExitStatus(status);
    }

    private static int ExitStatus(int status) => (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);

    /// <summary>Makes this process the reaper of orphaned descendants (so `run` can wait for the init).</summary>
    public static void BecomeSubreaper() => Errno.Check(Libc.Prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl");

    public static uint EffectiveUid => Libc.GetEuid();
}
