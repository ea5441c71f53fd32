// Shared helpers for the binding files (the only place besides register_*.cpp
// and module.cpp that includes pybind11).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "operand.hpp"

namespace ualign::bind {

namespace py = pybind11;

// Exact dtype, C order, no conversion: used where a copy would defeat the point.
template <class T>
using exact_array = py::array_t<T, py::array::c_style>;
// Any array-like, converted once to a C-ordered array of T.
template <class T>
using array_of = py::array_t<T, py::array::c_style | py::array::forcecast>;

inline void require_ndim(const py::array& a, int ndim, const std::string& name) {
  if (a.ndim() != ndim)
    throw std::invalid_argument(name + ": expected a " + std::to_string(ndim) + "-d array, got " +
                                std::to_string(a.ndim()) + "-d");
}

// An operand received from Python as the tuple
// (policies[T, m], product_probs[T], ks[T], items[N], offsets[S+1], multiset_probs[S]);
// keeps the arrays alive while kernels read the view.
struct OperandArrays {
  array_of<double> policies, product_probs;
  array_of<int64_t> ks, items, offsets;
  array_of<double> multiset_probs;
  Operand view;

  OperandArrays(const py::tuple& parts, int64_t m, const std::string& name) {
    if (parts.size() != 6) throw std::invalid_argument(name + ": malformed operand");
    policies = parts[0].cast<array_of<double>>();
    product_probs = parts[1].cast<array_of<double>>();
    ks = parts[2].cast<array_of<int64_t>>();
    items = parts[3].cast<array_of<int64_t>>();
    offsets = parts[4].cast<array_of<int64_t>>();
    multiset_probs = parts[5].cast<array_of<double>>();
    require_ndim(policies, 2, name + " policies");
    require_ndim(product_probs, 1, name + " probabilities");
    require_ndim(ks, 1, name + " k");
    require_ndim(items, 1, name + " members");
    require_ndim(offsets, 1, name + " offsets");
    require_ndim(multiset_probs, 1, name + " probabilities");
    const int64_t t = policies.shape(0);
    if ((t > 0 && policies.shape(1) != m) || product_probs.shape(0) != t || ks.shape(0) != t)
      throw std::invalid_argument(name + ": product terms do not match the number of responses");
    const int64_t s = multiset_probs.shape(0);
    if (offsets.shape(0) != s + 1)
      throw std::invalid_argument(name + ": offsets must have one entry per multiset plus one");
    if (offsets.at(s) != items.shape(0)) throw std::invalid_argument(name + ": offsets do not match the members");
    view.m = m;
    view.n_products = t;
    view.policies = policies.data();
    view.product_probs = product_probs.data();
    view.ks = ks.data();
    view.n_multisets = s;
    view.items = items.data();
    view.offsets = offsets.data();
    view.multiset_probs = multiset_probs.data();
    view.check(name);
  }
};

}  // namespace ualign::bind
