using System.Runtime.InteropServices;

namespace Vessel.Engine.Containers;

/// <summary>One thread asleep in poll(2) on a pidfd per container monitor (plus an eventfd to hear of new ones): a
/// monitor's exit calls <c>onExit</c> at once, so `run` learns that its container ended within a millisecond instead of
/// at the next poll of the watcher loop. A pidfd costs the daemon one fd and a few bytes per container; no thread.</summary>
internal sealed partial class ExitWatcher : IDisposable
{
    private readonly Action _onExit;
    private readonly Dictionary<int, int> _pidfds = []; // pid → pidfd
    private readonly Lock _lock = new();
    private readonly int _event;
    private readonly Thread? _thread;
    private volatile bool _stopping;

    public ExitWatcher(Action onExit)
    {
        _onExit = onExit;
        _event = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (_event < 0) return; // no eventfd: the watcher loop's slow poll still finds every exit
        _thread = new Thread(Run) { IsBackground = true, Name = "exit-watcher" };
        _thread.Start();
    }

    /// <summary>Watches <paramref name="pid"/>; false when it cannot (then the caller's poll has to find the exit).</summary>
    public bool Watch(int pid)
    {
        if (_thread is null || pid <= 0) return false;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0, 0, 0);
        if (fd < 0) return false;
        lock (_lock)
        {
            if (_pidfds.Remove(pid, out int old)) close(old);
            _pidfds[pid] = fd;
        }
        Kick();
        return true;
    }

    private void Kick()
    {
        ulong one = 1;
        unsafe { write(_event, &one, 8); }
    }

    private unsafe void Run()
    {
        var fds = new List<PollFd>();
        var pids = new List<int>();
        while (!_stopping)
        {
            fds.Clear();
            pids.Clear();
            fds.Add(new PollFd { Fd = _event, Events = POLLIN });
            lock (_lock)
                foreach (var (pid, fd) in _pidfds) { fds.Add(new PollFd { Fd = fd, Events = POLLIN }); pids.Add(pid); }
            PollFd[] arr = [.. fds];
            int n;
            fixed (PollFd* p = arr) n = poll(p, (nuint)arr.Length, -1);
            if (n < 0) { Thread.Sleep(10); continue; } // EINTR
            if ((arr[0].Revents & POLLIN) != 0) { ulong v; read(_event, &v, 8); }
            bool exited = false;
            for (int i = 1; i < arr.Length; i++)
            {
                if (arr[i].Revents == 0) continue;
                exited = true;
                lock (_lock)
                    if (_pidfds.TryGetValue(pids[i - 1], out int fd) && fd == arr[i].Fd) { _pidfds.Remove(pids[i - 1]); close(fd); }
            }
            if (exited)
            {
                try { _onExit(); }
                catch (Exception) { } // the callback only wakes the watcher loop
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        if (_thread is null) return;
        Kick();
        _thread.Join(2000);
        lock (_lock)
        {
            foreach (int fd in _pidfds.Values) close(fd);
            _pidfds.Clear();
        }
        close(_event);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    private const short POLLIN = 1;
    private const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    private const long SYS_pidfd_open = 434; // the same on every architecture (new syscall table)

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3, long a4);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint read(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint write(int fd, void* buf, nuint count);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
