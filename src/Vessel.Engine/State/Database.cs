using Microsoft.Data.Sqlite;

namespace Vessel.Engine.State;

/// <summary>The engine's durable state: <c>vessel.db</c> (SQLite) in the state root. WAL journal with
/// synchronous=NORMAL (a crash loses at most the last transactions, never consistency), foreign keys on,
/// a <c>schema_version</c> table and forward-only migrations applied in order at open, each in its own
/// transaction together with its version bump. Every state change goes through <see cref="Write"/>,
/// i.e. one transaction.</summary>
public sealed class Database : IDisposable
{
    public const string FileName = "vessel.db";

    /// <summary>Migration N (1-based) brings the schema from version N-1 to N. Append only: never edit a
    /// released migration, add a new one.</summary>
    internal static readonly string[] Migrations =
    [
        // 1: homes for containers and volumes.
        """
        CREATE TABLE containers (
            id      TEXT PRIMARY KEY NOT NULL,
            name    TEXT NOT NULL UNIQUE,
            image   TEXT NOT NULL,
            created INTEGER NOT NULL,          -- unix nanoseconds
            config  TEXT NOT NULL DEFAULT '{}', -- JSON
            state   TEXT NOT NULL DEFAULT '{}'  -- JSON
        );
        CREATE TABLE volumes (
            name    TEXT PRIMARY KEY NOT NULL,
            created INTEGER NOT NULL,
            labels  TEXT NOT NULL DEFAULT '{}'
        );
        """,
        // 2: virtual machines (src/Vessel.Engine/Machines).
        """
        CREATE TABLE machines (
            id      TEXT PRIMARY KEY NOT NULL,
            name    TEXT NOT NULL UNIQUE,
            created INTEGER NOT NULL,          -- unix nanoseconds
            config  TEXT NOT NULL DEFAULT '{}', -- JSON
            state   TEXT NOT NULL DEFAULT '{}'  -- JSON
        );
        """,
    ];

    private readonly SqliteConnection _conn;
    private readonly Lock _lock = new();

    public string Path { get; }
    public int SchemaVersion { get; private set; }

    private Database(string path, SqliteConnection conn)
    {
        Path = path;
        _conn = conn;
    }

    /// <summary>Opens (creating if needed) <c>vessel.db</c> in <paramref name="stateRoot"/> and migrates it.
    /// A database written by a newer Vessel (schema version above what this build knows) is refused.</summary>
    public static Database Open(string stateRoot) => Open(stateRoot, Migrations);

    internal static Database Open(string stateRoot, IReadOnlyList<string> migrations)
    {
        Directory.CreateDirectory(stateRoot);
        string path = System.IO.Path.Combine(stateRoot, FileName);
        var conn = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        try
        {
            conn.Open();
            Exec(conn, null, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
            var db = new Database(path, conn);
            db.Migrate(migrations);
            return db;
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    private void Migrate(IReadOnlyList<string> migrations)
    {
        using (SqliteTransaction tx = _conn.BeginTransaction())
        {
            Exec(_conn, tx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied INTEGER NOT NULL)");
            tx.Commit();
        }
        SchemaVersion = ReadVersion(null);
        if (SchemaVersion > migrations.Count)
            throw new EngineException(Api.ErrorCodes.Internal,
                $"{Path} has schema version {SchemaVersion}, newer than this vesseld knows ({migrations.Count}); upgrade vesseld");
        for (int v = SchemaVersion + 1; v <= migrations.Count; v++)
        {
            using SqliteTransaction tx = _conn.BeginTransaction();
            if (ReadVersion(tx) != v - 1) throw new EngineException(Api.ErrorCodes.Conflict, $"{Path}: migrated concurrently by another process");
            Exec(_conn, tx, migrations[v - 1]);
            using (SqliteCommand cmd = _conn.CreateCommand())
            {
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO schema_version (version, applied) VALUES ($v, $t)";
                cmd.Parameters.AddWithValue("$v", v);
                cmd.Parameters.AddWithValue("$t", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
            SchemaVersion = v;
        }
    }

    private int ReadVersion(SqliteTransaction? tx)
    {
        using SqliteCommand cmd = _conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs <paramref name="change"/> in one transaction: committed if it returns, rolled back if it throws.</summary>
    public T Write<T>(Func<SqliteConnection, SqliteTransaction, T> change)
    {
        lock (_lock)
        {
            using SqliteTransaction tx = _conn.BeginTransaction();
            T result = change(_conn, tx);
            tx.Commit();
            return result;
        }
    }

    /// <summary>Runs a read (the connection is shared, so reads are serialised with writes).</summary>
    public T Read<T>(Func<SqliteConnection, T> query)
    {
        lock (_lock) return query(_conn);
    }

    public long Count(string table)
    {
        if (table is not ("containers" or "volumes" or "machines")) throw new ArgumentException($"unknown table {table}", nameof(table));
        return Read(c =>
        {
            using SqliteCommand cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT COUNT(*) FROM {table}";
            return (long)cmd.ExecuteScalar()!;
        });
    }

    private static void Exec(SqliteConnection conn, SqliteTransaction? tx, string sql)
    {
        using SqliteCommand cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public void Dispose()
    {
        lock (_lock) _conn.Dispose();
    }
}
