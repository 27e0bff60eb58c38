using Microsoft.Data.Sqlite;
using Vessel.Engine.State;
using Vessel.Tests;

namespace Vessel.Engine.Tests;

public sealed class DatabaseTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static List<string> Tables(Database db) => db.Read(c =>
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name";
        using var r = cmd.ExecuteReader();
        var l = new List<string>();
        while (r.Read()) l.Add(r.GetString(0));
        return l;
    });

    [Fact]
    public void OpenCreatesTheSchemaInWalModeAndReopeningIsANoOp()
    {
        using (Database db = Database.Open(_tmp.Path))
        {
            Assert.Equal(Database.Migrations.Length, db.SchemaVersion);
            // Each room adds its own tables by migration; the core ones must be there.
            Assert.Superset(new HashSet<string> { "containers", "schema_version", "volumes" }, Tables(db).ToHashSet());
            Assert.Equal("wal", db.Read(c => { using var cmd = c.CreateCommand(); cmd.CommandText = "PRAGMA journal_mode"; return (string)cmd.ExecuteScalar()!; }));
            db.Write((c, tx) =>
            {
                using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO volumes (name, created) VALUES ('v1', 1)";
                return cmd.ExecuteNonQuery();
            });
        }
        using (Database db = Database.Open(_tmp.Path))
        {
            Assert.Equal(Database.Migrations.Length, db.SchemaVersion);
            Assert.Equal(1, db.Count("volumes"));
            Assert.Equal(Database.Migrations.Length, db.Read(c => { using var cmd = c.CreateCommand(); cmd.CommandText = "SELECT COUNT(*) FROM schema_version"; return (int)(long)cmd.ExecuteScalar()!; }));
        }
    }

    [Fact]
    public void MigrationsRunForwardOneTransactionEachAndAFailedOneLeavesTheOldVersion()
    {
        using (Database db = Database.Open(_tmp.Path, ["CREATE TABLE a (x INTEGER)"]))
            Assert.Equal(1, db.SchemaVersion);
        Assert.ThrowsAny<SqliteException>(() => Database.Open(_tmp.Path, ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER); CREATE TABLE nonsense ("]));
        using (Database db = Database.Open(_tmp.Path, ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"]))
        {
            Assert.Equal(2, db.SchemaVersion);
            Assert.Contains("b", Tables(db));
        }
        // A database from a newer vesseld is refused rather than misread.
        var e = Assert.Throws<EngineException>(() => Database.Open(_tmp.Path, ["CREATE TABLE a (x INTEGER)"]));
        Assert.Contains("newer", e.Message);
    }

    [Fact]
    public void AWriteThatThrowsIsRolledBack()
    {
        using Database db = Database.Open(_tmp.Path);
        Assert.Throws<InvalidOperationException>(() => db.Write<int>((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO containers (id, name, image, created) VALUES ('c1', 'web', 'busybox', 1)";
            cmd.ExecuteNonQuery();
            throw new InvalidOperationException("half-way");
        }));
        Assert.Equal(0, db.Count("containers"));
        // Names are unique.
        db.Write((c, tx) => { using var cmd = c.CreateCommand(); cmd.Transaction = tx; cmd.CommandText = "INSERT INTO containers (id, name, image, created) VALUES ('c1', 'web', 'busybox', 1)"; return cmd.ExecuteNonQuery(); });
        Assert.ThrowsAny<SqliteException>(() => db.Write((c, tx) => { using var cmd = c.CreateCommand(); cmd.Transaction = tx; cmd.CommandText = "INSERT INTO containers (id, name, image, created) VALUES ('c2', 'web', 'busybox', 1)"; return cmd.ExecuteNonQuery(); }));
    }
}
