// The RocksDB MetaStore. Opens (or creates) the database at path with every
// family of DefaultColumnFamilies() plus any found on disk. Writes use
// sync=true. One process may open a database once (kUnavailable otherwise).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "storage/meta_store.h"

namespace sigil::storage {

core::Result<std::unique_ptr<MetaStore>> OpenRocksMetaStore(const std::string& path);

}  // namespace sigil::storage
