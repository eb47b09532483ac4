// QUADPACK's QAGS and QAGI, and SciPy's quad and nquad conventions around them.
//
// A port of the public-domain Fortran of QUADPACK (R. Piessens, E. de
// Doncker-Kapenga, C. W. Ueberhuber, D. K. Kahaner: QUADPACK, a subroutine
// package for automatic integration, Springer 1983): dqagse, dqagie, dqk21,
// dqk15i, dqelg and dqpsrt.  Statement for statement, in the Fortran's
// order of operations and with its constants, so that a run subdivides as
// the Fortran does and gives its results to the last bit (compile without
// contraction into fused multiply-adds: -ffp-contract=off).  Arrays keep the
// Fortran's 1-based indices: slot 0 is never used.
//
// The integrand is any callable double(double), passed as a template
// argument so that the innermost call inlines.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <vector>

namespace capsules_quadpack {

constexpr double epmach = DBL_EPSILON;  // d1mach(4)
constexpr double uflow = DBL_MIN;       // d1mach(1)
constexpr double oflow = DBL_MAX;       // d1mach(2)
constexpr int limexp = 50;              // the epsilon table's size, in dqelg

// One integration's outcome, as dqagse and dqagie report it.
struct Result {
  double value = 0.0;
  double abserr = 0.0;
  long neval = 0;
  int ier = 0;
  int last = 0;
};

// The subinterval lists of one integration (dqagse's alist ... iord).
struct Workspace {
  std::vector<double> alist, blist, rlist, elist;
  std::vector<int> iord;
  explicit Workspace(int limit)
      : alist(limit + 1), blist(limit + 1), rlist(limit + 1), elist(limit + 1), iord(limit + 1) {}
};

// A Gauss-Kronrod pair's error estimate, the end of dqk21 and dqk15i: the
// Kronrod-Gauss difference, scaled by how far the integrand varies (resasc)
// and bounded below by the roundoff in the sum (resabs).
inline double rule_error(double resk, double resg, double hlgth, double resabs, double resasc) {
  double abserr = std::fabs((resk - resg) * hlgth);
  if (resasc != 0.0 && abserr != 0.0) abserr = resasc * std::min(1.0, std::pow(200.0 * abserr / resasc, 1.5));
  if (resabs > uflow / (50.0 * epmach)) abserr = std::max((epmach * 50.0) * resabs, abserr);
  return abserr;
}

// The 21-point Gauss-Kronrod rule on (a, b): dqk21.
template <class F>
void qk21(F &f, double a, double b, double &result, double &abserr, double &resabs, double &resasc) {
  // Abscissae and weights as evaluated with 80 decimal digits by L. W. Fullerton (Bell Labs, 1981).
  static constexpr double wg[6] = {0, 0.066671344308688137593568809893332, 0.149451349150580593145776339657697,
                                   0.219086362515982043995534934228163, 0.269266719309996355091226921569469,
                                   0.295524224714752870173892994651338};
  static constexpr double xgk[12] = {0, 0.995657163025808080735527280689003, 0.973906528517171720077964012084452,
                                     0.930157491355708226001207180059508, 0.865063366688984510732096688423493,
                                     0.780817726586416897063717578345042, 0.679409568299024406234327365114874,
                                     0.562757134668604683339000099272694, 0.433395394129247190799265943165784,
                                     0.294392862701460198131126603103866, 0.148874338981631210884826001129720,
                                     0.000000000000000000000000000000000};
  static constexpr double wgk[12] = {0, 0.011694638867371874278064396062192, 0.032558162307964727478818972459390,
                                     0.054755896574351996031381300244580, 0.075039674810919952767043140916190,
                                     0.093125454583697605535065465083366, 0.109387158802297641899210590325805,
                                     0.123491976262065851077958109831074, 0.134709217311473325928054001771707,
                                     0.142775938577060080797094273138717, 0.147739104901338491374841515972068,
                                     0.149445554002916905664936468389821};
  double fv1[11], fv2[11];
  double centr = 0.5 * (a + b);
  double hlgth = 0.5 * (b - a);
  double dhlgth = std::fabs(hlgth);
  double resg = 0.0;
  double fc = f(centr);
  double resk = wgk[11] * fc;
  resabs = std::fabs(resk);
  for (int j = 1; j <= 5; ++j) {
    int jtw = 2 * j;
    double absc = hlgth * xgk[jtw];
    double fval1 = f(centr - absc);
    double fval2 = f(centr + absc);
    fv1[jtw] = fval1;
    fv2[jtw] = fval2;
    double fsum = fval1 + fval2;
    resg = resg + wg[j] * fsum;
    resk = resk + wgk[jtw] * fsum;
    resabs = resabs + wgk[jtw] * (std::fabs(fval1) + std::fabs(fval2));
  }
  for (int j = 1; j <= 5; ++j) {
    int jtwm1 = 2 * j - 1;
    double absc = hlgth * xgk[jtwm1];
    double fval1 = f(centr - absc);
    double fval2 = f(centr + absc);
    fv1[jtwm1] = fval1;
    fv2[jtwm1] = fval2;
    double fsum = fval1 + fval2;
    resk = resk + wgk[jtwm1] * fsum;
    resabs = resabs + wgk[jtwm1] * (std::fabs(fval1) + std::fabs(fval2));
  }
  double reskh = resk * 0.5;
  resasc = wgk[11] * std::fabs(fc - reskh);
  for (int j = 1; j <= 10; ++j) resasc = resasc + wgk[j] * (std::fabs(fv1[j] - reskh) + std::fabs(fv2[j] - reskh));
  result = resk * hlgth;
  resabs = resabs * dhlgth;
  resasc = resasc * dhlgth;
  abserr = rule_error(resk, resg, hlgth, resabs, resasc);
}

// The 15-point Gauss-Kronrod rule on the transformed integrand over (a, b) in (0, 1]: dqk15i.
template <class F>
void qk15i(F &f, double boun, int inf, double a, double b, double &result, double &abserr, double &resabs,
           double &resasc) {
  // Abscissae and weights to 33 digits, as QUADPACK's dqk15i gives them.
  static constexpr double xgk[9] = {0, 0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                                    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                                    0.586087235467691130294144838258730, 0.405845151377397166906606412076961,
                                    0.207784955007898467600689403773245, 0.000000000000000000000000000000000};
  static constexpr double wgk[9] = {0, 0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                                    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                                    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                                    0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
  static constexpr double wg[9] = {0, 0.0, 0.129484966168869693270611432679082, 0.0,
                                   0.279705391489276667901467771423780, 0.0, 0.381830050505118944950369775488975,
                                   0.0, 0.417959183673469387755102040816327};
  double fv1[8], fv2[8];
  double dinf = static_cast<double>(std::min(1, inf));
  double centr = 0.5 * (a + b);
  double hlgth = 0.5 * (b - a);
  double tabsc1 = boun + dinf * (1.0 - centr) / centr;
  double fval1 = f(tabsc1);
  if (inf == 2) fval1 = fval1 + f(-tabsc1);
  double fc = (fval1 / centr) / centr;
  double resg = wg[8] * fc;
  double resk = wgk[8] * fc;
  resabs = std::fabs(resk);
  for (int j = 1; j <= 7; ++j) {
    double absc = hlgth * xgk[j];
    double absc1 = centr - absc;
    double absc2 = centr + absc;
    double t1 = boun + dinf * (1.0 - absc1) / absc1;
    double t2 = boun + dinf * (1.0 - absc2) / absc2;
    double f1 = f(t1);
    double f2 = f(t2);
    if (inf == 2) f1 = f1 + f(-t1);
    if (inf == 2) f2 = f2 + f(-t2);
    f1 = (f1 / absc1) / absc1;
    f2 = (f2 / absc2) / absc2;
    fv1[j] = f1;
    fv2[j] = f2;
    double fsum = f1 + f2;
    resg = resg + wg[j] * fsum;
    resk = resk + wgk[j] * fsum;
    resabs = resabs + wgk[j] * (std::fabs(f1) + std::fabs(f2));
  }
  double reskh = resk * 0.5;
  resasc = wgk[8] * std::fabs(fc - reskh);
  for (int j = 1; j <= 7; ++j) resasc = resasc + wgk[j] * (std::fabs(fv1[j] - reskh) + std::fabs(fv2[j] - reskh));
  result = resk * hlgth;
  resasc = resasc * hlgth;
  resabs = resabs * hlgth;
  abserr = rule_error(resk, resg, hlgth, resabs, resasc);
}

// Keeps iord(1..k) pointing at the error estimates in decreasing order: dqpsrt.
inline void qpsrt(int limit, int last, int &maxerr, double &ermax, const double *elist, int *iord, int &nrmax) {
  if (last <= 2) {
    iord[1] = 1;
    iord[2] = 2;
  } else {
    double errmax = elist[maxerr];
    if (nrmax != 1) {
      int ido = nrmax - 1;
      for (int i = 1; i <= ido; ++i) {
        int isucc = iord[nrmax - 1];
        if (errmax <= elist[isucc]) break;
        iord[nrmax] = isucc;
        nrmax = nrmax - 1;
      }
    }
    int jupbn = last;
    if (last > (limit / 2 + 2)) jupbn = limit + 3 - last;
    double errmin = elist[last];
    int jbnd = jupbn - 1;
    int ibeg = nrmax + 1;
    int i = ibeg;
    bool inserted = false;
    for (; i <= jbnd; ++i) {
      int isucc = iord[i];
      if (errmax >= elist[isucc]) {
        inserted = true;
        break;
      }
      iord[i - 1] = isucc;
    }
    if (!inserted) {
      iord[jbnd] = maxerr;
      iord[jupbn] = last;
    } else {
      // insert errmin by traversing the list bottom-up
      iord[i - 1] = maxerr;
      int k = jbnd;
      bool placed = false;
      for (int j = i; j <= jbnd; ++j) {
        int isucc = iord[k];
        if (errmin < elist[isucc]) {
          placed = true;
          break;
        }
        iord[k + 1] = isucc;
        k = k - 1;
      }
      if (placed)
        iord[k + 1] = last;
      else
        iord[i] = last;
    }
  }
  maxerr = iord[nrmax];
  ermax = elist[maxerr];
}

// Wynn's epsilon algorithm on the sequence in epstab(1..n): dqelg.
inline void qelg(int &n, double *epstab, double &result, double &abserr, double *res3la, int &nres) {
  nres = nres + 1;
  abserr = oflow;
  result = epstab[n];
  if (n < 3) {
    abserr = std::max(abserr, 5.0 * epmach * std::fabs(result));
    return;
  }
  epstab[n + 2] = epstab[n];
  int newelm = (n - 1) / 2;
  epstab[n] = oflow;
  int num = n;
  int k1 = n;
  for (int i = 1; i <= newelm; ++i) {
    int k2 = k1 - 1;
    int k3 = k1 - 2;
    double res = epstab[k1 + 2];
    double e0 = epstab[k3];
    double e1 = epstab[k2];
    double e2 = res;
    double e1abs = std::fabs(e1);
    double delta2 = e2 - e1;
    double err2 = std::fabs(delta2);
    double tol2 = std::max(std::fabs(e2), e1abs) * epmach;
    double delta3 = e1 - e0;
    double err3 = std::fabs(delta3);
    double tol3 = std::max(e1abs, std::fabs(e0)) * epmach;
    if (!(err2 > tol2 || err3 > tol3)) {
      // e0, e1 and e2 are equal to within machine accuracy: convergence is assumed
      result = res;
      abserr = err2 + err3;
      abserr = std::max(abserr, 5.0 * epmach * std::fabs(result));
      return;
    }
    double e3 = epstab[k1];
    epstab[k1] = e1;
    double delta1 = e1 - e3;
    double err1 = std::fabs(delta1);
    double tol1 = std::max(e1abs, std::fabs(e3)) * epmach;
    // two elements very close to each other, or irregular behaviour: omit part of the table
    if (err1 <= tol1 || err2 <= tol2 || err3 <= tol3) {
      n = i + i - 1;
      break;
    }
    double ss = 1.0 / delta1 + 1.0 / delta2 - 1.0 / delta3;
    double epsinf = std::fabs(ss * e1);
    if (!(epsinf > 1e-4)) {
      n = i + i - 1;
      break;
    }
    res = e1 + 1.0 / ss;
    epstab[k1] = res;
    k1 = k1 - 2;
    double error = err2 + std::fabs(res - e2) + err3;
    if (error > abserr) continue;
    abserr = error;
    result = res;
  }
  // shift the table
  if (n == limexp) n = 2 * (limexp / 2) - 1;
  int ib = (num / 2) * 2 == num ? 2 : 1;
  int ie = newelm + 1;
  for (int i = 1; i <= ie; ++i) {
    int ib2 = ib + 2;
    epstab[ib] = epstab[ib2];
    ib = ib2;
  }
  if (num != n) {
    int indx = num - n + 1;
    for (int i = 1; i <= n; ++i) {
      epstab[i] = epstab[indx];
      indx = indx + 1;
    }
  }
  if (nres < 4) {
    res3la[nres] = result;
    abserr = oflow;
  } else {
    abserr = std::fabs(result - res3la[3]) + std::fabs(result - res3la[2]) + std::fabs(result - res3la[1]);
    res3la[1] = res3la[2];
    res3la[2] = res3la[3];
    res3la[3] = result;
  }
  abserr = std::max(abserr, 5.0 * epmach * std::fabs(result));
}

// The globally adaptive loop with extrapolation shared by dqagse and dqagie,
// over (a, b) with `rule` (qk21 on the interval, or qk15i on the map onto
// (0, 1]).  Labels are the Fortran's statement numbers.
template <class Rule>
Result qags_loop(Rule &rule, double a, double b, double small0, double epsabs, double epsrel, int limit,
                 Workspace &ws) {
  double *alist = ws.alist.data(), *blist = ws.blist.data(), *rlist = ws.rlist.data(), *elist = ws.elist.data();
  int *iord = ws.iord.data();
  double rlist2[limexp + 3], res3la[4];
  double result = 0.0, abserr = 0.0, defabs = 0.0, resabs = 0.0, dres, errbnd, area = 0.0, errsum = 0.0,
         errmax = 0.0, erlarg = 0.0, erlast, ertest = 0.0, small = 0.0, correc = 0.0, area1, area2, area12,
         error1, error2, erro12, defab1, defab2, a1, a2, b1, b2, reseps, abseps;
  int ier = 0, ierro = 0, last = 0, maxerr = 1, nrmax = 1, nres = 0, numrl2 = 2, ktmin = 0, iroff1 = 0,
      iroff2 = 0, iroff3 = 0, ksgn = -1;
  bool extrap = false, noext = false;
  alist[1] = a;
  blist[1] = b;
  rlist[1] = 0.0;
  elist[1] = 0.0;
  rule(a, b, result, abserr, defabs, resabs);
  dres = std::fabs(result);
  errbnd = std::max(epsabs, epsrel * dres);
  last = 1;
  rlist[1] = result;
  elist[1] = abserr;
  iord[1] = 1;
  if (abserr <= 100.0 * epmach * defabs && abserr > errbnd) ier = 2;
  if (limit == 1) ier = 1;
  if (ier != 0 || (abserr <= errbnd && abserr != resabs) || abserr == 0.0) goto done;
  rlist2[1] = result;
  errmax = abserr;
  maxerr = 1;
  area = result;
  errsum = abserr;
  abserr = oflow;
  if (dres >= (1.0 - 50.0 * epmach) * defabs) ksgn = 1;
  for (last = 2; last <= limit; ++last) {
    // bisect the subinterval with the nrmax-th largest error estimate
    a1 = alist[maxerr];
    b1 = 0.5 * (alist[maxerr] + blist[maxerr]);
    a2 = b1;
    b2 = blist[maxerr];
    erlast = errmax;
    rule(a1, b1, area1, error1, resabs, defab1);
    rule(a2, b2, area2, error2, resabs, defab2);
    area12 = area1 + area2;
    erro12 = error1 + error2;
    errsum = errsum + erro12 - errmax;
    area = area + area12 - rlist[maxerr];
    if (!(defab1 == error1 || defab2 == error2)) {
      if (!(std::fabs(rlist[maxerr] - area12) > 1e-5 * std::fabs(area12) || erro12 < 0.99 * errmax)) {
        if (extrap) iroff2 = iroff2 + 1;
        if (!extrap) iroff1 = iroff1 + 1;
      }
      if (last > 10 && erro12 > errmax) iroff3 = iroff3 + 1;
    }
    rlist[maxerr] = area1;
    rlist[last] = area2;
    errbnd = std::max(epsabs, epsrel * std::fabs(area));
    if (iroff1 + iroff2 >= 10 || iroff3 >= 20) ier = 2;
    if (iroff2 >= 5) ierro = 3;
    if (last == limit) ier = 1;
    if (std::max(std::fabs(a1), std::fabs(b2)) <= (1.0 + 100.0 * epmach) * (std::fabs(a2) + 1000.0 * uflow)) ier = 4;
    if (!(error2 > error1)) {
      alist[last] = a2;
      blist[maxerr] = b1;
      blist[last] = b2;
      elist[maxerr] = error1;
      elist[last] = error2;
    } else {
      alist[maxerr] = a2;
      alist[last] = a1;
      blist[last] = b1;
      rlist[maxerr] = area2;
      rlist[last] = area1;
      elist[maxerr] = error2;
      elist[last] = error1;
    }
    qpsrt(limit, last, maxerr, errmax, elist, iord, nrmax);
    if (errsum <= errbnd) goto sum;
    if (ier != 0) goto final;
    if (last == 2) {
      small = small0;
      erlarg = errsum;
      ertest = errbnd;
      rlist2[2] = area;
      continue;
    }
    if (noext) continue;
    erlarg = erlarg - erlast;
    if (std::fabs(b1 - a1) > small) erlarg = erlarg + erro12;
    if (!extrap) {
      // is the interval to be bisected next the smallest interval?
      if (std::fabs(blist[maxerr] - alist[maxerr]) > small) continue;
      extrap = true;
      nrmax = 2;
    }
    if (!(ierro == 3 || erlarg <= ertest)) {
      // the smallest interval has the largest error: before bisecting, decrease
      // the sum of the errors over the larger intervals (erlarg), and extrapolate
      int id = nrmax;
      int jupbnd = last;
      if (last > (2 + limit / 2)) jupbnd = limit + 3 - last;
      bool larger = false;
      for (int k = id; k <= jupbnd; ++k) {
        maxerr = iord[nrmax];
        errmax = elist[maxerr];
        if (std::fabs(blist[maxerr] - alist[maxerr]) > small) {
          larger = true;
          break;
        }
        nrmax = nrmax + 1;
      }
      if (larger) continue;
    }
    // perform extrapolation (label 60)
    numrl2 = numrl2 + 1;
    rlist2[numrl2] = area;
    qelg(numrl2, rlist2, reseps, abseps, res3la, nres);
    ktmin = ktmin + 1;
    if (ktmin > 5 && abserr < 1e-3 * errsum) ier = 5;
    if (!(abseps >= abserr)) {
      ktmin = 0;
      abserr = abseps;
      result = reseps;
      correc = erlarg;
      ertest = std::max(epsabs, epsrel * std::fabs(reseps));
      if (abserr <= ertest) goto final;
    }
    // prepare bisection of the smallest interval (label 70)
    if (numrl2 == 1) noext = true;
    if (ier == 5) goto final;
    maxerr = iord[1];
    errmax = elist[maxerr];
    nrmax = 1;
    extrap = false;
    small = small * 0.5;
    erlarg = errsum;
  }
final:  // label 100: set the final result and error estimate
  if (abserr == oflow) goto sum;
  if (ier + ierro == 0) goto divergence;
  if (ierro == 3) abserr = abserr + correc;
  if (ier == 0) ier = 3;
  if (result != 0.0 && area != 0.0) {
    if (abserr / std::fabs(result) > errsum / std::fabs(area)) goto sum;
    goto divergence;
  }
  if (abserr > errsum) goto sum;
  if (area == 0.0) goto decrement;
divergence:  // label 110
  if (ksgn == -1 && std::max(std::fabs(result), std::fabs(area)) <= defabs * 0.01) goto decrement;
  if (0.01 > (result / area) || (result / area) > 100.0 || errsum > std::fabs(area)) ier = 6;
  goto decrement;
sum:  // label 115: compute the global integral sum
  result = 0.0;
  for (int k = 1; k <= last; ++k) result = result + rlist[k];
  abserr = errsum;
decrement:  // label 130
  if (ier > 2) ier = ier - 1;
done:
  Result out;
  out.value = result;
  out.abserr = abserr;
  out.ier = ier;
  out.last = last;
  return out;
}

// dqagse: the integral of f over the finite interval (a, b).
template <class F> Result qagse(F &f, double a, double b, double epsabs, double epsrel, int limit, Workspace &ws) {
  auto rule = [&f](double lo, double hi, double &r, double &e, double &ra, double &rs) { qk21(f, lo, hi, r, e, ra, rs); };
  Result out = qags_loop(rule, a, b, std::fabs(b - a) * 0.375, epsabs, epsrel, limit, ws);
  out.neval = 42L * out.last - 21;
  return out;
}

// dqagie: the integral of f over (bound, +inf) (inf = 1), (-inf, bound) (inf = -1) or (-inf, +inf) (inf = 2).
template <class F>
Result qagie(F &f, double bound, int inf, double epsabs, double epsrel, int limit, Workspace &ws) {
  double boun = inf == 2 ? 0.0 : bound;
  auto rule = [&f, boun, inf](double lo, double hi, double &r, double &e, double &ra, double &rs) {
    qk15i(f, boun, inf, lo, hi, r, e, ra, rs);
  };
  Result out = qags_loop(rule, 0.0, 1.0, 0.375, epsabs, epsrel, limit, ws);
  out.neval = 30L * out.last - 15;
  if (inf == 2) out.neval = 2 * out.neval;
  return out;
}

// scipy.integrate.quad without points or weight: reversed limits integrate
// the other way round and negate, and an infinite limit goes to dqagie.  An
// empty interval is 0 without a call where SciPy's quad says so
// (`empty_is_zero`; older SciPy integrates it: 21 calls, 0).
template <class F>
Result quad(F &f, double a, double b, double epsabs, double epsrel, int limit, Workspace &ws, bool empty_is_zero) {
  if (a == b && empty_is_zero) return Result{};
  bool flip = b < a;
  double lo = b < a ? b : a, hi = b > a ? b : a;
  constexpr double infinity = std::numeric_limits<double>::infinity();
  Result out;
  if (hi != infinity && lo != -infinity)
    out = qagse(f, lo, hi, epsabs, epsrel, limit, ws);
  else if (hi == infinity && lo != -infinity)
    out = qagie(f, lo, 1, epsabs, epsrel, limit, ws);
  else if (hi == infinity)
    out = qagie(f, 0.0, 2, epsabs, epsrel, limit, ws);
  else
    out = qagie(f, hi, -1, epsabs, epsrel, limit, ws);
  if (flip) out.value = -out.value;
  return out;
}

}  // namespace capsules_quadpack
