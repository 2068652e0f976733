// Precompiled header shared by every Reel target: LibTorch and the standard library parts
// nearly every file includes. Keep project headers out of it (they change often).
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
