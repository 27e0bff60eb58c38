using System.Security.Cryptography;
using System.Text;
using Vessel.Api;
using Vessel.Engine.Networks;
using Vessel.Machines;
using Vessel.Network;

namespace Vessel.Engine.Machines;

/// <summary>VM networking (docs/machines.md#networking): one NIC per --network, a tap device on the network's
/// bridge while the VM runs (made by the daemon, opened by QEMU by name, virtio-net-pci, vhost-net when
/// /dev/vhost-net opens). The address comes from the networks' IPAM, reserved from create to rm like a
/// container's; the guest takes it by DHCP from the daemon's server on the bridge; the VM's name resolves in the
/// network's DNS while it runs. Tap name and MAC derive from the VM id, so they are stable and need no allocation.</summary>
public sealed partial class MachineService
{
    /// <summary>The tap of NIC <paramref name="index"/>: "vsl" (the leak check's prefix for Vessel's links) + 10 hex
    /// digits of the VM id + "t" + the index: 15 bytes, IFNAMSIZ's limit.</summary>
    public static string TapName(string id, int index) => $"vsl{id[..10]}t{index}";

    /// <summary>QEMU's locally administered prefix 52:54:00 + 3 bytes of a hash of the VM id and NIC index.</summary>
    public static string MacFor(string id, int index)
    {
        byte[] h = SHA256.HashData(Encoding.UTF8.GetBytes($"{id}/{index}"));
        return $"52:54:00:{h[0]:x2}:{h[1]:x2}:{h[2]:x2}";
    }

    /// <summary>The networks a create asks for, checked the way `vessel run --network` checks them; no --network
    /// (or none) is a VM without NICs.</summary>
    private List<string> CheckNetworks(List<string>? requested)
    {
        List<string> list = [.. (requested ?? []).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal)];
        if (list.Contains("none"))
        {
            if (list.Count > 1) throw EngineException.Invalid("--network none cannot be combined with other networks");
            return [];
        }
        foreach (string n in list)
            if (n == "host" || n.StartsWith("container:", StringComparison.Ordinal))
                throw EngineException.Invalid($"--network {n}: a VM has its own kernel and cannot share a network namespace; use a bridge network");
        if (list.Count > 0 && _networks is null) throw EngineException.Invalid("--network: this daemon runs VMs without networking");
        if (list.Count > 8) throw EngineException.Invalid("--network: at most 8 networks per VM");
        return list;
    }

    /// <summary>Reserves each NIC's address (IPAM) and records network, tap and MAC.</summary>
    private List<MachineNicRecord> ReserveNics(string id, string name, List<string> networks)
    {
        var nics = new List<MachineNicRecord>();
        for (int i = 0; i < networks.Count; i++)
        {
            string tap = TapName(id, i), mac = MacFor(id, i);
            TapAttachment a = _networks!.ReserveTap(networks[i], tap, name, mac);
            nics.Add(new MachineNicRecord(a.Network, tap, mac));
        }
        return nics;
    }

    private void ReleaseNics(string id, int count)
    {
        for (int i = 0; i < count; i++) _networks?.DetachTap(TapName(id, i));
    }

    /// <summary>Before QEMU starts: a fresh tap per NIC, on its bridge, its name served.</summary>
    private List<NicSpec> StartNics(MachineRecord m, out bool vhost)
    {
        vhost = false;
        if (m.Config.Nics.Count == 0) return [];
        if (_networks is null) throw EngineException.Invalid($"VM {m.Name} has networks but this daemon runs VMs without networking");
        vhost = TapDevice.VhostAvailable();
        var specs = new List<NicSpec>();
        try
        {
            for (int i = 0; i < m.Config.Nics.Count; i++)
            {
                MachineNicRecord nic = m.Config.Nics[i];
                TapDevice.Delete(nic.Tap); // left over by a crash
                TapDevice.Create(nic.Tap);
                _networks.AttachTap(nic.Network, nic.Tap, nic.Mac, name: m.Name);
                specs.Add(new NicSpec("net" + i, nic.Tap, nic.Mac, vhost));
            }
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            RemoveTaps(m);
            throw new EngineException(ErrorCodes.Internal, $"VM {m.Name}: setting up its network: {e.Message}");
        }
        catch
        {
            RemoveTaps(m);
            throw;
        }
        return specs;
    }

    /// <summary>A re-adopted VM (daemon restart): its taps back on their bridges (idempotent) and its names served.</summary>
    private void ReattachNics(MachineRecord m)
    {
        if (_networks is null) return;
        foreach (MachineNicRecord nic in m.Config.Nics)
        {
            try { _networks.AttachTap(nic.Network, nic.Tap, nic.Mac, name: m.Name); }
            catch (EngineException e) { _log($"vm {m.Name}: {e.Message}"); }
        }
    }

    /// <summary>QEMU is gone (or never started): the taps go, the names are no longer served; the addresses stay
    /// reserved until rm.</summary>
    private void RemoveTaps(MachineRecord m)
    {
        foreach (MachineNicRecord nic in m.Config.Nics)
        {
            _networks?.TapDown(nic.Tap);
            try { TapDevice.Delete(nic.Tap); }
            catch (IOException e) { _log($"vm {m.Name}: deleting {nic.Tap}: {e.Message}"); }
        }
    }

    private List<MachineNetworkInfo>? NetworkInfo(MachineRecord m)
    {
        if (m.Config.Nics.Count == 0) return null;
        var list = new List<MachineNetworkInfo>();
        foreach (MachineNicRecord nic in m.Config.Nics)
        {
            TapAttachment? a = _networks?.TapInfo(nic.Tap).FirstOrDefault();
            list.Add(new MachineNetworkInfo
            {
                Network = a?.Network ?? nic.Network, MacAddress = nic.Mac, IpAddress = a?.Address.ToString(), PrefixLen = a?.Prefix ?? 0,
                Gateway = a is null || a.Internal ? null : a.Gateway.ToString(), Dns = a?.Dns?.ToString(), Tap = nic.Tap,
                Vhost = m.State.Status is MachineStatus.Running or MachineStatus.Paused ? m.State.Vhost : null,
            });
        }
        return list;
    }
}
