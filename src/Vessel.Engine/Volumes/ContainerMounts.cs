using Vessel.Api;
using Vessel.Images.Oci;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Volumes;

/// <summary>From a create request's -v/--mount/--tmpfs and the image's VOLUMEs to the container's mounts: volumes
/// created (named ones on first use, anonymous ones per container), bind sources checked, then the OCI mounts.</summary>
public static class ContainerMounts
{
    /// <summary>Every mount the request and image ask for; a target given twice is refused, as docker does. Image
    /// VOLUMEs that no mount of the request covers become anonymous volumes.</summary>
    public static List<MountRequest> Requests(ContainerCreateRequest req, ContainerConfig? image)
    {
        var list = new List<MountRequest>();
        foreach (string b in req.Binds ?? []) list.Add(MountParser.ParseBind(b));
        foreach (string m in req.Mounts ?? []) list.Add(MountParser.ParseMount(m));
        foreach (string t in req.Tmpfs ?? []) list.Add(MountParser.ParseTmpfs(t));
        var dup = list.GroupBy(m => m.Target).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw EngineException.Invalid($"Duplicate mount point: {dup.Key}");
        foreach (string v in image?.Volumes?.Keys ?? [])
        {
            if (!v.StartsWith('/')) continue;
            string target = MountParser.Clean(v);
            if (target == "/" || list.Any(m => m.Target == target)) continue;
            list.Add(new MountRequest { Type = "volume", Target = target });
        }
        return list;
    }

    /// <summary>Creates what the mounts need: volumes (named if missing, anonymous always) and -v bind sources.
    /// <paramref name="created"/> gets the volumes made here (to undo on failure).</summary>
    internal static List<ContainerMountPoint> Resolve(VolumeService volumes, IReadOnlyList<MountRequest> requests, List<string> created)
    {
        var result = new List<ContainerMountPoint>();
        foreach (var m in requests)
        {
            switch (m.Type)
            {
                case "volume":
                    var v = volumes.Ensure(m.Source, m.VolumeLabels, out bool isNew);
                    if (isNew) created.Add(v.Name);
                    result.Add(new ContainerMountPoint
                    {
                        Type = "volume", Name = v.Name, Source = v.Mountpoint, Destination = m.Target, ReadOnly = m.ReadOnly,
                        Anonymous = v.Anonymous, CopyUp = !m.NoCopy,
                    });
                    break;
                case "bind":
                    string source = m.Source!;
                    if (!Directory.Exists(source) && !File.Exists(source) && new FileInfo(source).LinkTarget is null)
                    {
                        if (!m.CreateSource) throw EngineException.Invalid($"invalid mount config for type \"bind\": bind source path does not exist: {source}");
                        try { Directory.CreateDirectory(source); } // -v's legacy behaviour: a missing host directory is created
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                        { throw EngineException.Invalid($"error while creating mount source path '{source}': {e.Message}"); }
                    }
                    result.Add(new ContainerMountPoint
                    {
                        Type = "bind", Source = source, Destination = m.Target, ReadOnly = m.ReadOnly,
                        Propagation = m.Propagation ?? "rprivate", Options = m.NonRecursive ? ["bind"] : null,
                    });
                    break;
                default:
                    result.Add(new ContainerMountPoint { Type = "tmpfs", Destination = m.Target, ReadOnly = m.ReadOnly, Options = m.TmpfsOptions });
                    break;
            }
        }
        return result;
    }

    /// <summary>docker's copy-up, for the volumes that still are empty and cover a directory of the image.</summary>
    internal static void CopyUpAll(string rootfs, IEnumerable<ContainerMountPoint> mounts, Action<string> log)
    {
        foreach (var m in mounts)
        {
            if (m.Type != "volume" || !m.CopyUp) continue;
            string? from = CopyUp.ImageDir(rootfs, m.Destination);
            if (from is null) continue;
            try { CopyUp.IfEmpty(from, m.Source); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new EngineException(ErrorCodes.Internal, $"copying the image's {m.Destination} into volume {m.Name}: {e.Message}"); }
        }
    }

    /// <summary>The OCI mounts, parents before children (by path depth, as docker sorts them).</summary>
    public static IEnumerable<MountSpec> Spec(IEnumerable<ContainerMountPoint> mounts) =>
        mounts.OrderBy(m => m.Destination.Count(c => c == '/')).Select(m => m.Type == "tmpfs"
            ? new MountSpec { Destination = m.Destination, Type = "tmpfs", Source = "tmpfs", Options = [.. m.Options ?? [], m.ReadOnly ? "ro" : "rw"] }
            : new MountSpec
            {
                Destination = m.Destination, Type = "bind", Source = m.Source,
                Options = [m.Options?.Contains("bind") == true ? "bind" : "rbind", m.Propagation ?? "rprivate", m.ReadOnly ? "ro" : "rw"],
            });
}
