using System.Text;
using Vessel.Linux.Interop;

namespace Vessel.Linux;

/// <summary>Starts a program with posix_spawn (glibc uses clone(CLONE_VM|CLONE_VFORK): no managed code
/// runs in the child) and places exactly the file descriptors the caller names.</summary>
public static unsafe class Spawn
{
    /// <param name="fds">target fd → fd to place there. fds 0–2 and every fd the caller inherited
    /// without close-on-exec pass through unchanged; .NET's own fds are close-on-exec.</param>
    /// <param name="newSession">start the child in a session of its own (POSIX_SPAWN_SETSID): no controlling
    /// terminal, untouched by the caller's terminal signals (for daemons).</param>
    public static int Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env, IReadOnlyDictionary<int, SafeFd> fds,
        bool newSession = false)
    {
        var strings = new List<nint>();
        try
        {
            byte** argvp = ToNative(argv, strings);
            byte** envp = ToNative(env, strings);
            byte* actions = stackalloc byte[Libc.SizeOfFileActions];
            byte* attr = stackalloc byte[Libc.SizeOfSpawnAttr];
            byte* sigset = stackalloc byte[Libc.SizeOfSigSet];
            Libc.SpawnFileActionsInit(actions);
            Libc.SpawnAttrInit(attr);
            try
            {
                // .NET blocks or handles signals in ways the child must not inherit.
                Libc.SigEmptySet(sigset);
                Libc.SpawnAttrSetSigMask(attr, sigset);
                Libc.SigFillSet(sigset);
                Libc.SpawnAttrSetSigDefault(attr, sigset);
                Libc.SpawnAttrSetFlags(attr, (short)(Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF | (newSession ? Libc.POSIX_SPAWN_SETSID : 0)));
                // Two passes so that a source fd is never overwritten by an earlier dup2 target.
                var staged = new List<(int Temp, int Target)>();
                var temp = 1000;
                foreach (var (target, fd) in fds.OrderBy(p => p.Key))
                {
                    Libc.SpawnFileActionsAddDup2(actions, fd.Fd, temp);
                    staged.Add((temp++, target));
                }
                foreach (var (t, target) in staged) Libc.SpawnFileActionsAddDup2(actions, t, target);
                foreach (var (t, _) in staged) Libc.SpawnFileActionsAddClose(actions, t);
                int pid;
                var rc = Libc.PosixSpawn(&pid, path, actions, attr, argvp, envp);
                if (rc != 0) throw Errno.Exception(rc, "posix_spawn", path);
                return pid;
            }
            finally
            {
                Libc.SpawnFileActionsDestroy(actions);
                Libc.SpawnAttrDestroy(attr);
            }
        }
        finally
        {
            foreach (var p in strings) System.Runtime.InteropServices.NativeMemory.Free((void*)p);
        }
    }

    private static byte** ToNative(IReadOnlyList<string> items, List<nint> allocations)
    {
        var array = (byte**)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
        allocations.Add((nint)array);
        for (var i = 0; i < items.Count; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(items[i]);
            var s = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes.Length + 1);
            allocations.Add((nint)s);
            bytes.CopyTo(new Span<byte>(s, bytes.Length));
            s[bytes.Length] = 0;
            array[i] = s;
        }
        return array;
    }
}
