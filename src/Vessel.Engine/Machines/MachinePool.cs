using Vessel.Machines;
using Vessel.Machines.Disks;

namespace Vessel.Engine.Machines;

/// <summary>The pool's bases live as long as some VM's disk depends on them. Linked clones and imports put files
/// into the pool; nothing else says when one is free, so after a VM is removed (and when the daemon starts, for a
/// removal cut short) every disk's backing chain is walked and the pool files outside all chains are deleted.</summary>
public sealed partial class MachineService
{
    // Held while pool files are added and made part of a chain (import, clone, incoming migration) and while the pool
    // is collected: a base that is in the pool but not yet behind any disk must not be taken for garbage.
    private readonly Lock _poolGate = new();

    /// <summary>Deletes the pool files no VM disk depends on; returns their names.</summary>
    public IReadOnlyList<string> CollectPool()
    {
        lock (_poolGate)
        {
            // Most state roots have no shared bases: then no chain needs reading (one qemu-img per disk).
            if (!Directory.EnumerateFiles(Pool).Any()) return [];
            var used = new HashSet<string>(StringComparer.Ordinal);
            foreach (string dir in Directory.EnumerateDirectories(Dir))
            {
                if (Path.GetFileName(dir) == "pool") continue;
                foreach (string disk in Directory.EnumerateFiles(dir))
                    if (Path.GetExtension(disk) is ".qcow2" && !MarkChain(disk, used)) return [];   // unsure: delete nothing
            }
            var removed = new List<string>();
            foreach (string file in Directory.EnumerateFiles(Pool))
            {
                if (used.Contains(Path.GetFullPath(file))) continue;
                try { File.Delete(file); removed.Add(Path.GetFileName(file)); }
                catch (IOException e) { _log($"vm pool: cannot remove {Path.GetFileName(file)}: {e.Message}"); }
            }
            if (removed.Count > 0) _log($"vm pool: removed {removed.Count} base(s) no disk depends on: {string.Join(", ", removed)}");
            return removed;
        }
    }

    /// <summary>Adds every file behind <paramref name="disk"/> to <paramref name="used"/> (backing names are relative
    /// to the file that names them). False when a chain cannot be read: then nothing may be deleted.</summary>
    private bool MarkChain(string disk, HashSet<string> used)
    {
        string current = disk;
        for (int depth = 0; depth < 64; depth++)
        {
            DiskInfo info;
            try { info = QemuImg.Info(current); }
            catch (MachineException e)
            {
                _log($"vm pool: cannot read {current}, keeping every base: {e.Message}");
                return false;
            }
            if (info.BackingFile is not { Length: > 0 } backing) return true;
            current = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current)!, backing));
            if (!used.Add(current)) return true;   // the rest of this chain is marked already
        }
        return true;
    }

    /// <summary>CollectPool for the paths that must not fail because of it (removal, start-up).</summary>
    private void CollectPoolQuietly()
    {
        try { CollectPool(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or MachineException)
        {
            _log($"vm pool: collection failed: {e.Message}");
        }
    }
}
