/// Where chunk contents live, addressed by digest. The namespace never touches blob storage
/// except through this protocol, so object storage can replace the local directory.
///
/// Small chunks live inline in the database instead (see `ContentStore`); a `BlobStore` holds
/// the large ones.
public protocol BlobStore: Sendable {
    func contains(_ digest: BlobDigest) -> Bool
    /// Stores `data` under `digest` (the caller computed it). Idempotent.
    func put(_ digest: BlobDigest, data: UnsafeRawBufferPointer, durable: Bool) throws(FSError)
    /// Moves a complete local file holding exactly the chunk into the store. If the blob is
    /// already present the file is removed instead. `durable` fsyncs data and directory.
    func adopt(_ digest: BlobDigest, file path: String, durable: Bool) throws(FSError)
    /// Reads up to `buffer.count` bytes at `offset` of the blob; returns the count read.
    func read(_ digest: BlobDigest, offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(FSError) -> Int
    func delete(_ digest: BlobDigest) throws(FSError)
    /// Every digest present, for fsck and gc.
    func allDigests() throws(FSError) -> [BlobDigest]
}
