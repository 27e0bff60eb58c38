using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

using Vessel.Tests.Shared;

namespace Vessel.Images.Tests.Registry;

/// <summary>xunit class fixture: one open registry shared by a test class (tests use distinct repositories).</summary>
public sealed class RegistryFixture : IDisposable
{
    public RegistryProcess Registry { get; } = new();
    public void Dispose() => Registry.Dispose();
}
