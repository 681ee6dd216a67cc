// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title PerAgreementEscrow
/// @notice The benchmark's baseline: the design of the 2018-era proposals for SLA escrow, one contract
/// deployed per agreement. The customer deploys it with the deposit (price per second × maximum
/// duration); the provider activates it when the conference starts; the customer stops it; the provider
/// settles with the measured availability (paid for the seconds used, nothing below 75%, the rest goes
/// back to the customer at once) and withdraws its charge. Benchmark use only: written to be cheap in
/// today's terms (immutables, one packed slot, custom errors), so the comparison is not flattered.
contract PerAgreementEscrow {
    enum Status {
        Signed,
        Active,
        Ended,
        Settled
    }

    uint256 private constant BPS = 10_000;
    uint256 private constant MIN_AVAILABILITY_BPS = 7500;

    address payable public immutable customer;
    address payable public immutable provider;
    uint256 public immutable pricePerSecond;
    uint256 public immutable maxDuration;

    // One slot: every step after the deployment writes it once.
    Status public status;
    uint40 public startedAt;
    uint40 public endedAt;
    /// @notice What the provider may withdraw once settled.
    uint256 public owed;

    event Activated(uint256 startedAt);
    event Stopped(uint256 endedAt);
    event Settled(uint256 availabilityBps, uint256 charge, uint256 refund);
    event Withdrawn(uint256 amount);

    error WrongDeposit(uint256 expected, uint256 received);
    error WrongStatus(Status status);
    error Unauthorized(address caller);
    error InvalidAvailability(uint256 availabilityBps);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);

    modifier only(address account) {
        if (msg.sender != account) revert Unauthorized(msg.sender);
        _;
    }

    modifier inStatus(Status expected) {
        if (status != expected) revert WrongStatus(status);
        _;
    }

    /// @param provider_ Activates, settles and is paid.
    constructor(address payable provider_, uint256 pricePerSecond_, uint256 maxDuration_) payable {
        uint256 deposit = pricePerSecond_ * maxDuration_;
        if (deposit == 0 || msg.value != deposit) revert WrongDeposit(deposit, msg.value);
        customer = payable(msg.sender);
        provider = provider_;
        pricePerSecond = pricePerSecond_;
        maxDuration = maxDuration_;
    }

    function activate() external only(provider) inStatus(Status.Signed) {
        status = Status.Active;
        startedAt = uint40(block.timestamp);
        emit Activated(block.timestamp);
    }

    function stop() external only(customer) inStatus(Status.Active) {
        uint256 latest = uint256(startedAt) + maxDuration;
        uint256 ended = block.timestamp < latest ? block.timestamp : latest;
        status = Status.Ended;
        // forge-lint: disable-next-line(unsafe-typecast)
        endedAt = uint40(ended);
        emit Stopped(ended);
    }

    function settle(uint256 availabilityBps) external only(provider) inStatus(Status.Ended) {
        if (availabilityBps > BPS) revert InvalidAvailability(availabilityBps);
        uint256 charge = availabilityBps < MIN_AVAILABILITY_BPS ? 0 : pricePerSecond * (endedAt - startedAt);
        uint256 refund = address(this).balance - charge;
        status = Status.Settled;
        owed = charge;
        emit Settled(availabilityBps, charge, refund);
        if (refund != 0) _send(customer, refund);
    }

    function withdraw() external only(provider) {
        uint256 amount = owed;
        if (amount == 0) revert NothingToWithdraw();
        owed = 0;
        emit Withdrawn(amount);
        _send(provider, amount);
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
